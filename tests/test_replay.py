"""The crash replayer publishes what a deviation-and-heartbeat Chainlink feed would have published."""

import math
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _replay import DEVIATION, HEARTBEAT, Candle, candle_points, feed_updates, path_points, read_candles  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "scripts" / "data"


def test_straight_fall__an_answer_each_time_the_price_moves_half_a_percent():
    # 100 -> 90 over 3000 s (1/300 USD a second): the feed answers at the first whole second the
    # price is 0.5% from its last answer: at most log(0.9)/log(0.995) = 21 answers, fewer as each
    # answer lands a little past its threshold
    ups = feed_updates([(0, Decimal(100)), (3000, Decimal(90))])
    assert ups[0].reason == "start" and all(u.reason == "deviation" for u in ups[1:])
    assert 19 <= len(ups) - 1 <= 21
    assert ups[-1].price <= Decimal(90) * (1 + DEVIATION)  # and it ends near the bottom
    for prev, cur in zip(ups, ups[1:]):
        assert float(cur.price) == pytest.approx(100 - cur.timestamp / 300, abs=1e-9)  # the price seen then
        assert 1 - cur.price / prev.price >= DEVIATION
        # and a second earlier it was still within the threshold
        assert 1 - Decimal(repr(100 - (cur.timestamp - 1) / 300)) / prev.price < DEVIATION


def test_flat_path__heartbeat_every_hour():
    ups = feed_updates([(0, Decimal(50)), (3 * HEARTBEAT + 10, Decimal(50))])
    assert [(u.timestamp, u.reason) for u in ups] == [(0, "start"), (3600, "heartbeat"), (7200, "heartbeat"), (10800, "heartbeat")]


def test_small_moves_below_threshold__only_heartbeats():
    ups = feed_updates([(0, Decimal(100)), (1800, Decimal("100.4")), (3700, Decimal("99.7"))])
    assert [u.reason for u in ups] == ["start", "heartbeat"]


def test_candle_order__bearish_high_first_bullish_low_first():
    bear = Candle(0, Decimal(10), Decimal(12), Decimal(7), Decimal(8))
    bull = Candle(0, Decimal(10), Decimal(12), Decimal(7), Decimal(11))
    assert [p for _, p in candle_points(bear)] == [10, 12, 7, 8]
    assert [p for _, p in candle_points(bull)] == [10, 7, 12, 11]
    assert [t for t, _ in candle_points(bear)] == [0, 1200, 2400, 3599]


def test_read_candles__shared_windows_have_72_consistent_candles():
    for name in ("eth_usd_1h_2020-03-11_black_thursday.csv", "eth_usd_1h_2021-05-18_may19_crash.csv"):
        candles = read_candles(DATA / name)
        assert len(candles) == 72
        assert all(b.timestamp - a.timestamp == 3600 for a, b in zip(candles, candles[1:]))


def test_read_candles__inconsistent_candle__refused(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("# c\ntimestamp,open,high,low,close\n0,10,9,8,9.5\n")
    with pytest.raises(ValueError, match="inconsistent candle"):
        read_candles(f)


def test_black_thursday__feed_follows_the_crash_within_the_threshold():
    candles = read_candles(DATA / "eth_usd_1h_2020-03-11_black_thursday.csv")
    ups = feed_updates(path_points(candles))
    low = min(c.low for c in candles)
    assert min(u.price for u in ups) <= low * (1 + DEVIATION)
    assert 150 < len(ups) < 2000  # a 50% crash in 0.5% steps, both ways, plus heartbeats


# candles whose range is at most 60% of their low: within a candle the path moves under 0.5% a
# second, so a feed answering once a second keeps within its threshold (real hourly candles, Black
# Thursday's included, stay far below that); jumps come from gaps between candles
moves = st.integers(min_value=0, max_value=600)  # per mille of the candle's low


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(50, 500), moves, moves, moves), min_size=1, max_size=6))
def test_any_candles__deviation_and_heartbeat_rules_hold(raw):
    candles = []
    for i, (low, a, b, c) in enumerate(raw):
        lo = Decimal(low)
        o, cl, hi = (lo * (1000 + x) / 1000 for x in (a, b, c))
        candles.append(Candle(i * 3600, o, max(o, cl, hi), lo, cl))
    pts = path_points(candles)
    ups = feed_updates(pts)
    for prev, cur in zip(ups, ups[1:]):
        assert cur.timestamp > prev.timestamp
        assert cur.timestamp - prev.timestamp <= HEARTBEAT
        if cur.reason == "deviation":
            assert abs(cur.price / prev.price - 1) >= DEVIATION - Decimal("1e-12")
        else:
            assert cur.reason == "heartbeat" and cur.timestamp - prev.timestamp == HEARTBEAT
    # at every point of the path, the last answer is within the threshold of the true price, but
    # for a jump between candles, which the feed publishes one second later
    for t, p in pts:
        last = [u for u in ups if u.timestamp <= t][-1]
        later = [u for u in ups if u.timestamp <= t + 1][-1]
        assert abs(p / last.price - 1) < DEVIATION or abs(p / later.price - 1) < DEVIATION
