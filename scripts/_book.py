"""The crash demo's trader book: who trades what, drawn from a fixed seed, and the one place that
knows which engine calls open a trader's position.

Every trader has a margin `mode`: "cross" (its collateral backs the position as the account's
cross margin) or "isolated" (all its collateral moves into the position's own margin).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from keeper.localchain import MAX_UINT256, generated_addresses, selector_call

WAD = 10**18
MODES = ("cross", "isolated")
# a trader opens at most this share of the market's maximum leverage: the taker fee and the skew
# the trade creates come out of its margin, so exactly the maximum would be refused
LEVERAGE_HEADROOM = 0.95


@dataclass(frozen=True)
class Trader:
    address: str
    mode: str  # margin mode: "cross" or "isolated"
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


def max_leverage(market: Any, notional_usd: Decimal | float = 0) -> Decimal:
    """The largest leverage the market's initial requirement allows a position of `notional_usd`
    (a `MarketConfig`), before any volatility term: IM(N) = max(imf * N, im_multiplier * MM(N))
    with MM piecewise linear over the brackets, so larger positions get less."""
    n = Decimal(str(notional_usd))
    table = market.bracket_list()
    if n <= 0:
        return 1 / max(market.imf, market.im_multiplier * table[0].mmf)
    mm, lower = Decimal(0), Decimal(0)
    for b in table:
        upper = n if b.cap is None else min(n, b.cap)
        if upper > lower:
            mm += (upper - lower) * b.mmf
        if b.cap is None or n <= b.cap:
            break
        lower = b.cap
    return n / max(market.imf * n, market.im_multiplier * mm)


def make_book(
    n: int,
    seed: int,
    max_lev: Decimal | Callable[[Decimal], Decimal],
    *,
    market_id: int = 0,
    notional_usd: tuple[float, float] = (250.0, 1_200_000.0),
    isolated_share: float = 0.3,
) -> list[Trader]:
    """`n` traders, long and short, in an opening order that keeps the market's skew small (so
    late traders are not filled far from the oracle price).

    Notional is log-uniform over `notional_usd` (sizes spread over more than three decades, so
    over several maintenance brackets) and leverage uniform from 1x to `LEVERAGE_HEADROOM` of
    `max_lev` (a number, or a function of the notional: larger positions get less), independently;
    a share `isolated_share` of the traders is isolated, the rest cross. Sides go, largest
    position first, to the side with less notional so far, so both sides hold about the same;
    then traders open long while the skew is not long, short otherwise, so the skew never goes
    much beyond the largest position.
    """
    if n < 1:
        raise ValueError("the book needs at least one trader")
    if not 0 <= isolated_share <= 1:
        raise ValueError(f"isolated_share {isolated_share} outside [0, 1]")
    rng = random.Random(seed)
    lo, hi = (math.log(x) for x in notional_usd)
    drawn = []
    for address in generated_addresses(n, seed=seed):
        notional = Decimal(str(round(math.exp(rng.uniform(lo, hi)), 2)))
        cap = max_lev(notional) if callable(max_lev) else max_lev
        leverage = Decimal(str(round(rng.uniform(1.0, float(cap) * LEVERAGE_HEADROOM), 3)))
        mode = "isolated" if rng.random() < isolated_share else "cross"
        drawn.append((address, notional, leverage, mode))
    sides: dict[int, list[Trader]] = {1: [], -1: []}
    total = {1: Decimal(0), -1: Decimal(0)}
    for address, notional, leverage, mode in sorted(drawn, key=lambda d: d[1], reverse=True):
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


def position_txs(trader: Trader, engine: str, price: Decimal, unit: int = 10**6) -> list[dict[str, Any]]:
    """The transactions (from the trader) that open its position once its collateral is
    deposited (every trader deposits `collateral_usd` first, whatever its mode; `unit` is one
    dollar in token units). The only place that calls the engine's trading functions."""
    size = trader.size(price)
    limit = MAX_UINT256 if size > 0 else 0
    if trader.mode == "cross":
        data = selector_call(
            "trade(uint256,int256,uint256)", ["uint256", "int256", "uint256"], [trader.market_id, size, limit]
        )
    elif trader.mode == "isolated":
        # all of the trader's collateral becomes the position's own margin
        margin = int(trader.collateral_usd * unit)
        data = selector_call(
            "trade_isolated(uint256,int256,uint256,int256)",
            ["uint256", "int256", "uint256", "int256"],
            [trader.market_id, size, limit, margin],
        )
    else:
        raise ValueError(f"margin mode {trader.mode!r} is not supported")
    return [{"from": trader.address, "to": engine, "data": data, "gas": 500_000}]
