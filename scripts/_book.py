"""The crash demo's trader book: who trades what, drawn from a fixed seed, and the one place that
knows which engine calls open a trader's position.

Every trader has a margin `mode`. Today the engine has cross margin only, so every trader is
"cross"; isolated margin adds a mode here and a branch in `position_txs`, nothing else.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from keeper.localchain import MAX_UINT256, generated_addresses, selector_call

WAD = 10**18
MODES = ("cross",)
# a trader opens at most this share of the market's maximum leverage: the taker fee and the skew
# the trade creates come out of its margin, so exactly the maximum would be refused
LEVERAGE_HEADROOM = 0.95


@dataclass(frozen=True)
class Trader:
    address: str
    mode: str  # margin mode: "cross"
    market_id: int
    side: int  # +1 long, -1 short
    notional_usd: Decimal  # position size in USD at the opening price
    leverage: Decimal  # notional / collateral

    @property
    def collateral_usd(self) -> Decimal:
        return (self.notional_usd / self.leverage).quantize(Decimal("0.01"))

    def size(self, price: Decimal) -> int:
        """Signed size in 18-decimal base units at `price` (USD per whole unit)."""
        return self.side * int(self.notional_usd / price * WAD)


def max_leverage(market: Any) -> Decimal:
    """The largest leverage the market's initial requirement allows in its first bracket (a
    `MarketConfig`), before any volatility term."""
    return 1 / max(market.imf, market.im_multiplier * market.first_mmf)


def make_book(
    n: int,
    seed: int,
    max_lev: Decimal,
    *,
    market_id: int = 0,
    notional_usd: tuple[float, float] = (250.0, 150_000.0),
    mode: str = "cross",
) -> list[Trader]:
    """`n` traders, long and short, in an opening order that keeps the market's skew small (so
    late traders are not filled far from the oracle price).

    Notional is log-uniform over `notional_usd` (sizes spread over almost three decades) and
    leverage uniform from 1x to `LEVERAGE_HEADROOM` of `max_lev`, independently. Sides go, largest
    position first, to the side with less notional so far, so both sides hold about the same;
    then traders open long while the skew is not long, short otherwise, so the skew never goes
    much beyond the largest position.
    """
    if n < 1:
        raise ValueError("the book needs at least one trader")
    if mode not in MODES:
        raise ValueError(f"margin mode {mode!r} is not supported (known: {', '.join(MODES)})")
    rng = random.Random(seed)
    lo, hi = (math.log(x) for x in notional_usd)
    top = float(max_lev) * LEVERAGE_HEADROOM
    drawn = []
    for address in generated_addresses(n, seed=seed):
        notional = Decimal(str(round(math.exp(rng.uniform(lo, hi)), 2)))
        leverage = Decimal(str(round(rng.uniform(1.0, top), 3)))
        drawn.append((address, notional, leverage))
    sides: dict[int, list[Trader]] = {1: [], -1: []}
    total = {1: Decimal(0), -1: Decimal(0)}
    for address, notional, leverage in sorted(drawn, key=lambda d: d[1], reverse=True):
        side = rng.choice((1, -1)) if total[1] == total[-1] else (1 if total[1] < total[-1] else -1)
        sides[side].append(Trader(address, mode, market_id, side, notional, leverage))
        total[side] += notional
    for group in sides.values():
        rng.shuffle(group)
    book: list[Trader] = []
    skew = Decimal(0)
    while sides[1] or sides[-1]:
        t = (sides[1] if (skew <= 0 and sides[1]) or not sides[-1] else sides[-1]).pop()
        skew += t.side * t.notional_usd
        book.append(t)
    return book


def position_txs(trader: Trader, engine: str, price: Decimal) -> list[dict[str, Any]]:
    """The transactions (from the trader) that open its position once its collateral is
    deposited (every trader deposits `collateral_usd` first, whatever its mode). The only place
    that calls the engine's trading functions."""
    size = trader.size(price)
    limit = MAX_UINT256 if size > 0 else 0
    if trader.mode == "cross":
        data = selector_call(
            "trade(uint256,int256,uint256)", ["uint256", "int256", "uint256"], [trader.market_id, size, limit]
        )
    else:
        raise ValueError(f"margin mode {trader.mode!r} is not supported")
    return [{"from": trader.address, "to": engine, "data": data, "gas": 500_000}]
