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


# -- a small synthetic window, end to end through candles ---------------------------------------


def _flat(t: int, p: int) -> Candle:
    return Candle(t, Decimal(p), Decimal(p), Decimal(p), Decimal(p))


def test_synthetic_window__heartbeat_then_half_percent_steps_then_heartbeat():
    # hour 0 flat at 100; hour 1 falls (high 100 first, then low 90 at +2400, close 90); hour 2 flat
    # at 90. Path: 100 until 4800 s, then 1/120 USD a second down to 90 at 6000 s, then 90.
    candles = [_flat(0, 100), Candle(3600, Decimal(100), Decimal(100), Decimal(90), Decimal(90)), _flat(7200, 90)]
    ups = feed_updates(path_points(candles))
    assert (ups[0].timestamp, ups[0].price, ups[0].reason) == (0, 100, "start")
    assert (ups[1].timestamp, float(ups[1].price), ups[1].reason) == (3600, 100.0, "heartbeat")
    falling = [u for u in ups if u.reason == "deviation"]
    # 100 -> 90 in steps of at least 0.5%: at most 21 answers, the first 60 s into the fall
    assert 19 <= len(falling) <= 21
    assert 4860 <= falling[0].timestamp <= 4861 and all(4860 <= u.timestamp <= 6000 for u in falling)
    prev = ups[1]
    for u in falling:
        assert 1 - u.price / prev.price >= DEVIATION - Decimal("1e-12")
        # the second before, the path was still within the threshold of the last answer
        before = 100 - (u.timestamp - 1 - 4800) / 120
        assert 1 - Decimal(repr(before)) / prev.price < DEVIATION
        prev = u
    # then flat: the next answer is the heartbeat an hour after the last move's answer
    after = ups[len(falling) + 2 :]
    assert [u.reason for u in after] == ["heartbeat"] * len(after)
    assert after[0].timestamp == falling[-1].timestamp + HEARTBEAT
    assert all(abs(u.price / falling[-1].price - 1) < DEVIATION for u in after)


def test_gap_between_candles__published_as_a_jump_at_the_next_open():
    ups = feed_updates(path_points([_flat(0, 100), _flat(3600, 95)]))
    assert [(u.timestamp, float(u.price), u.reason) for u in ups] == [(0, 100.0, "start"), (3600, 95.0, "deviation")]


# -- bad window files: a clear message each -------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "no header and no candles"),
        ("# only a comment\n", "no header and no candles"),
        ("timestamp,open,high,low,close\n", "no candles"),
        ("time,open,high,low,close\n0,1,1,1,1\n", "header lacks timestamp"),
        ("timestamp,open,high,low\n0,1,1,1\n", "header lacks close"),
        ("timestamp,open,high,low,close\n0,1,1,1\n", "line 2: 4 fields, the header has 5"),
        ("timestamp,open,high,low,close\n0,1,x,1,1\n", "line 2: not a candle"),
        ("timestamp,open,high,low,close\n1.5,1,1,1,1\n", "line 2: not a candle"),
        ("timestamp,open,high,low,close\n0,1,NaN,1,1\n", "line 2: prices must be finite"),
        ("timestamp,open,high,low,close\n0,1,1,0,1\n", "line 2: inconsistent candle"),
        ("# c\ntimestamp,open,high,low,close\n3600,1,1,1,1\n0,1,1,1,1\n", "line 4: candle at 0 is not after"),
    ],
)
def test_read_candles__malformed__names_file_line_and_fault(tmp_path, text, message):
    f = tmp_path / "w.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_candles(f)
    assert str(f) in str(info.value)


def test_read_candles__missing_file_or_directory__named(tmp_path):
    with pytest.raises(ValueError, match="window file not found: .*nope.csv"):
        read_candles(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="window file not found"):
        read_candles(tmp_path)


def test_read_candles__extra_columns_and_any_column_order(tmp_path):
    f = tmp_path / "w.csv"
    f.write_text("# c\nclose,volume,timestamp,low,high,open\n9,12.5,3600,8,11,10\n9.5,3,7200,9,10,9\n")
    assert read_candles(f) == [
        Candle(3600, Decimal(10), Decimal(11), Decimal(8), Decimal(9)),
        Candle(7200, Decimal(9), Decimal(10), Decimal(9), Decimal("9.5")),
    ]
