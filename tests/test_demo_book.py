"""The demo's pieces that need no chain: the trader book and the delay measurement."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _book import LEVERAGE_HEADROOM, make_book, max_leverage, position_txs  # noqa: E402
from _crash import delays  # noqa: E402
from _deploy import ROOT, load_config  # noqa: E402


def test_book__500_traders_spread_in_size_leverage_brackets_and_modes_sides_balanced() -> None:
    market = load_config(ROOT / "config" / "local.yaml").markets[0]
    assert max_leverage(market) == 10  # imf 0.1 over im_multiplier * first mmf = 0.075

    def top(n):
        return max_leverage(market, n)

    book = make_book(500, 2020, top)
    assert book == make_book(500, 2020, top) and book != make_book(500, 2021, top)
    assert len({t.address for t in book}) == 500
    assert 200 <= sum(t.side > 0 for t in book) <= 300
    isolated = sum(t.mode == "isolated" for t in book)
    assert 100 <= isolated <= 200 and {t.mode for t in book} == {"cross", "isolated"}
    # every trader within the initial requirement of its own notional (brackets: larger, less)
    assert all(1 <= t.leverage <= top(t.notional_usd) * Decimal(LEVERAGE_HEADROOM) for t in book)
    sizes = sorted(t.notional_usd for t in book)
    assert sizes[0] >= 250 and sizes[-1] <= 1_200_000 and sizes[-1] / sizes[0] > 2000  # spread widely
    caps = [b.cap for b in market.bracket_list() if b.cap is not None]
    # over all three of ETH-USD's brackets
    assert sum(n <= caps[0] for n in sizes) > 300 and sum(caps[0] < n <= caps[1] for n in sizes) > 20
    assert sum(n > caps[1] for n in sizes) >= 3
    assert top(Decimal(1_000_000)) < top(Decimal(250_000)) == 10
    # opened in this order, the skew never exceeds the largest single position
    skew = Decimal(0)
    for t in book:
        skew += t.side * t.notional_usd
        assert abs(skew) <= sizes[-1]


def test_max_leverage__piecewise_linear_requirement() -> None:
    market = load_config(ROOT / "config" / "local.yaml").markets[0]
    # 1M: MM = 250k * 5% + 750k * 7.5% = 68,750; IM = max(100k, 1.5 * 68,750 = 103,125)
    assert max_leverage(market, 1_000_000) == Decimal(1_000_000) / Decimal("103125")


def test_book__bad_isolated_share_refused() -> None:
    with pytest.raises(ValueError, match="isolated_share 1.5 outside"):
        make_book(4, 1, Decimal(10), isolated_share=1.5)


def test_position_txs__cross_trade_of_the_signed_size() -> None:
    [long_, short] = sorted(make_book(2, 3, Decimal(10), isolated_share=0), key=lambda t: -t.side)
    tx = position_txs(long_, "0x" + "11" * 20, Decimal(200))[0]
    assert tx["from"] == long_.address and tx["data"].startswith("0x")
    assert int(tx["data"][10 + 64 : 10 + 128], 16) == long_.size(Decimal(200)) > 0
    size = int(position_txs(short, "0x" + "11" * 20, Decimal(200))[0]["data"][10 + 64 : 10 + 128], 16)
    assert size - 2**256 == short.size(Decimal(200)) < 0


def test_position_txs__isolated_trade_moves_all_collateral_into_margin() -> None:
    [t] = make_book(1, 4, Decimal(10), isolated_share=1)
    data = position_txs(t, "0x" + "11" * 20, Decimal(200), unit=10**6)[0]["data"]
    words = [int(data[10 + 64 * i : 10 + 64 * (i + 1)], 16) for i in range(4)]
    assert t.mode == "isolated" and words[3] == int(t.collateral_usd * 10**6) > 0
    assert words[1] == t.size(Decimal(200)) % 2**256


def test_delays__from_the_first_liquidatable_block_to_the_block_it_is_not() -> None:
    checked = {
        10: frozenset({"a"}),
        11: frozenset({"b"}),  # a liquidated in 11; b becomes liquidatable
        12: frozenset({"b", "d"}),
        13: frozenset({"d"}),  # b liquidated in 13: two blocks; d liquidated in 13 but still liquidatable
        14: frozenset({"c", "d"}),
        15: frozenset(),  # d liquidated again in 15: three blocks; c recovered without a liquidation
        16: frozenset({"a"}),  # a again, still liquidatable at the end
    }
    got, missed = delays(checked, {"a": [11], "b": [13], "d": [13, 15]}, last_block=16)
    assert sorted(got) == [1, 1, 1, 2, 3]
    assert sorted((s.account, s.start) for s in missed) == [("a", 16), ("c", 14)]
