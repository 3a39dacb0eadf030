"""The keeper's local margin model of each account, and ranking by risk.

The model follows ``docs/margin-math.md`` with its rounding (requirements round up, equity rounds
down), so its equity and maintenance match the engine's view for the same inputs. It is only used
to decide which accounts to confirm on-chain first: the engine's ``healths`` view has the last word,
and the full sweep checks every account regularly, so nothing relies on the model alone.

Definitions used here (all USD values in WAD):

- **equity** of the cross bucket: ``collateral + sum(U - funding_owed)`` over cross positions; of an
  isolated position: ``isolated_margin + U - funding_owed``.
- **maintenance**: ``sum(ceil(N * mmf))`` with ``N = ceil(|size| * P)``, using the *effective*
  maintenance fraction the engine applies (bracket and volatility scaling already folded in by the
  caller).
- **margin ratio**: ``equity / maintenance``; the bucket is liquidatable when it is below 1
  (``equity < maintenance``, strictly). ``inf`` when there is no requirement.
- **distance to liquidation**: the smallest ``x`` such that moving every market's price by at most
  a fraction ``x`` (each in any direction) can make the bucket liquidatable. The worst case for a
  given ``x`` moves each position against the account: longs down by ``x``, shorts up by ``x``
  (``equity - maintenance`` is linear in each price, and this corner is its minimum). Then

  ``equity(x) = E - x * sum(N)`` and ``maintenance(x) = M + x * (MM_short - MM_long)``,

  so ``x = (E - M) / (sum(N) - MM_long + MM_short)``. A hedge does not lower the risk under this
  definition, because markets can move apart; for a single position it is the usual liquidation
  price distance (``P_liq = P * (1 - x)`` for a long, ``P * (1 + x)`` for a short). A negative
  distance means the bucket is already liquidatable; ``inf`` means no price move can get it there.
  The distance is linear in prices, so it ignores bracket changes and funding accrued later.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keeper.units import WAD

__all__ = [
    "Position",
    "AccountModel",
    "Margin",
    "AccountRisk",
    "Ranking",
    "MissingPriceError",
    "ceil_div",
    "margin_of",
    "assess_account",
    "rank_accounts",
    "select_candidates",
]

Prices = Mapping[int, int]
"""Validated WAD prices by market id."""


class MissingPriceError(KeyError):
    """Raised when a position's market has no price in the price map."""

    def __init__(self, market_id: int) -> None:
        super().__init__(market_id)
        self.market_id = market_id

    def __str__(self) -> str:
        return f"no price for market {self.market_id}"


def ceil_div(a: int, b: int) -> int:
    """Signed integer division rounded toward plus infinity (``b > 0``)."""
    if b <= 0:
        raise ValueError("ceil_div: divisor must be positive")
    return -((-a) // b)


@dataclass(frozen=True)
class Position:
    """One position of an account, as the keeper last read or reconstructed it.

    :param market_id: engine market id.
    :param size: signed base units, 18 decimals (positive = long).
    :param cost: signed cost basis, WAD USD.
    :param mmf: effective maintenance margin fraction, WAD (1e18 = 100%).
    :param funding_owed: accrued funding the account owes (negative = is owed), WAD USD.
    :param isolated_margin: margin of an isolated position, WAD USD; ``None`` for a cross position.
    """

    market_id: int
    size: int
    cost: int
    mmf: int
    funding_owed: int = 0
    isolated_margin: int | None = None

    @property
    def is_isolated(self) -> bool:
        """Whether the position is isolated (has its own margin)."""
        return self.isolated_margin is not None


@dataclass(frozen=True)
class AccountModel:
    """The local model of one account: cross collateral and positions."""

    account: str
    collateral: int
    positions: tuple[Position, ...] = ()


@dataclass(frozen=True)
class Margin:
    """Margin figures of one bucket (the cross positions, or one isolated position)."""

    equity: int
    maintenance: int
    notional: int
    distance: float

    @property
    def liquidatable(self) -> bool:
        """``equity < maintenance``, strictly, as the engine decides."""
        return self.equity < self.maintenance

    @property
    def margin_ratio(self) -> float:
        """``equity / maintenance``; below 1 is liquidatable, ``inf`` with no requirement."""
        if self.maintenance == 0:
            return math.inf
        return self.equity / self.maintenance


@dataclass(frozen=True)
class AccountRisk:
    """Risk of one account: its cross bucket and each isolated position."""

    account: str
    cross: Margin | None
    isolated: Mapping[int, Margin] = field(default_factory=dict)

    @property
    def headline(self) -> Margin | None:
        """The riskiest bucket (smallest distance): cross unless an isolated one is closer."""
        buckets = ([self.cross] if self.cross is not None else []) + list(self.isolated.values())
        if not buckets:
            return None
        return min(buckets, key=lambda m: m.distance)

    @property
    def distance(self) -> float:
        """Distance to liquidation of the riskiest bucket; ``inf`` without positions."""
        head = self.headline
        return math.inf if head is None else head.distance

    @property
    def liquidatable(self) -> bool:
        """Whether the cross bucket is liquidatable (what ``liquidate_many`` acts on)."""
        return self.cross is not None and self.cross.liquidatable

    @property
    def liquidatable_isolated(self) -> tuple[int, ...]:
        """Market ids of isolated positions that are liquidatable, ascending."""
        return tuple(sorted(m for m, margin in self.isolated.items() if margin.liquidatable))


def margin_of(base_equity: int, positions: Sequence[Position], prices: Prices) -> Margin:
    """Margin figures of one bucket of positions on top of ``base_equity`` (collateral or margin).

    :raises MissingPriceError: if a position's market is not in ``prices``.
    """
    equity = base_equity
    maintenance = 0
    notional = 0
    # Sensitivity of (equity - maintenance) to a worst-case move of x: sum(N) - MM_long + MM_short.
    sensitivity = 0
    for pos in positions:
        if pos.size == 0:
            continue
        if pos.market_id not in prices:
            raise MissingPriceError(pos.market_id)
        price = prices[pos.market_id]
        n = ceil_div(abs(pos.size) * price, WAD)
        value = (pos.size * price) // WAD
        mm = ceil_div(n * pos.mmf, WAD)
        equity += value - pos.cost - pos.funding_owed
        maintenance += mm
        notional += n
        sensitivity += n - mm if pos.size > 0 else n + mm
    buffer = equity - maintenance
    if sensitivity > 0:
        distance = buffer / sensitivity
    elif buffer < 0:
        distance = -math.inf
    else:
        distance = math.inf
    return Margin(equity=equity, maintenance=maintenance, notional=notional, distance=distance)


def assess_account(model: AccountModel, prices: Prices) -> AccountRisk:
    """Compute the :class:`AccountRisk` of one account at ``prices``.

    :raises MissingPriceError: if a position's market is not in ``prices``.
    """
    live = [p for p in model.positions if p.size != 0]
    cross_positions = [p for p in live if not p.is_isolated]
    cross = margin_of(model.collateral, cross_positions, prices) if cross_positions else None
    isolated = {
        p.market_id: margin_of(p.isolated_margin or 0, [p], prices) for p in live if p.is_isolated
    }
    return AccountRisk(account=model.account, cross=cross, isolated=isolated)


@dataclass(frozen=True)
class Ranking:
    """Accounts ranked riskiest first, and those the model could not price."""

    ranked: list[AccountRisk]
    unpriced: list[str]


def _risk_key(risk: AccountRisk) -> tuple[float, float, str]:
    head = risk.headline
    ratio = math.inf if head is None else head.margin_ratio
    return (risk.distance, ratio, risk.account.lower())


def rank_accounts(models: Iterable[AccountModel], prices: Prices) -> Ranking:
    """Rank accounts by distance to liquidation, smallest first.

    Ties are broken by margin ratio, then by address, so the order is deterministic. Accounts with
    a position in a market missing from ``prices`` are not guessed at: they are listed in
    ``Ranking.unpriced`` so the caller confirms them on-chain. Accounts without positions are left
    out.
    """
    ranked: list[AccountRisk] = []
    unpriced: list[str] = []
    for model in models:
        try:
            risk = assess_account(model, prices)
        except MissingPriceError:
            unpriced.append(model.account)
            continue
        if risk.headline is not None:
            ranked.append(risk)
    ranked.sort(key=_risk_key)
    return Ranking(ranked=ranked, unpriced=unpriced)


def select_candidates(ranking: Ranking, *, max_distance: float, limit: int) -> list[str]:
    """Accounts to confirm on-chain with ``healths``, in priority order.

    First every account the model finds liquidatable (negative distance), then every unpriced
    account, then the others whose
    distance is at most ``max_distance`` (e.g. ``0.02`` for a 2% move), riskiest first, at most
    ``limit`` in all, each account once.
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    if max_distance < 0:
        raise ValueError("max_distance must not be negative")
    chosen: list[str] = []
    seen: set[str] = set()

    def take(account: str) -> None:
        key = account.lower()
        if key not in seen and len(chosen) < limit:
            seen.add(key)
            chosen.append(account)

    for risk in ranking.ranked:
        # A liquidatable bucket has a negative distance, and ``ranked`` is sorted by distance.
        if risk.distance >= 0:
            break
        take(risk.account)
    for account in ranking.unpriced:
        take(account)
    for risk in ranking.ranked:
        if risk.distance > max_distance:
            break
        take(risk.account)
    return chosen
