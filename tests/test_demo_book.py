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


def test_book__500_traders_spread_in_size_and_leverage_sides_balanced() -> None:
    market = load_config(ROOT / "config" / "local.yaml").markets[0]
    top = max_leverage(market)
    assert top == 10  # imf 0.1 over im_multiplier * mmf = 0.075
    book = make_book(500, 2020, top)
    assert book == make_book(500, 2020, top) and book != make_book(500, 2021, top)
    assert len({t.address for t in book}) == 500
    assert 200 <= sum(t.side > 0 for t in book) <= 300 and {t.mode for t in book} == {"cross"}
    levs = sorted(t.leverage for t in book)
    assert 1 <= levs[0] < Decimal("1.2") and top * Decimal(LEVERAGE_HEADROOM) * Decimal("0.97") < levs[-1] <= top * Decimal(LEVERAGE_HEADROOM)
    sizes = sorted(t.notional_usd for t in book)
    assert sizes[0] >= 250 and sizes[-1] <= 150_000 and sizes[-1] / sizes[0] > 200  # spread widely
    # opened in this order, the skew never exceeds the largest single position
    skew = Decimal(0)
    for t in book:
        skew += t.side * t.notional_usd
        assert abs(skew) <= sizes[-1]


def test_book__unknown_mode_refused() -> None:
    with pytest.raises(ValueError, match="margin mode 'isolated' is not supported"):
        make_book(4, 1, Decimal(10), mode="isolated")


def test_position_txs__cross_trade_of_the_signed_size() -> None:
    [long_, short] = sorted(make_book(2, 3, Decimal(10)), key=lambda t: -t.side)
    tx = position_txs(long_, "0x" + "11" * 20, Decimal(200))[0]
    assert tx["from"] == long_.address and tx["data"].startswith("0x")
    assert int(tx["data"][10 + 64 : 10 + 128], 16) == long_.size(Decimal(200)) > 0
    size = int(position_txs(short, "0x" + "11" * 20, Decimal(200))[0]["data"][10 + 64 : 10 + 128], 16)
    assert size - 2**256 == short.size(Decimal(200)) < 0


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
