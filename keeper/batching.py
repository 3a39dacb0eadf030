"""Splitting liquidations into transactions under a gas cap.

A ``liquidate_many`` transaction should stay well under the block gas limit so it fits in a block
next to other traffic: by default at most a third of the limit. Accounts are taken in the caller's
priority order and batches are filled one after the other, so the first batch holds the most urgent
accounts and no account is ever in two batches.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = [
    "DEFAULT_GAS_FRACTION",
    "DEFAULT_TX_OVERHEAD_GAS",
    "Batch",
    "BatchPlan",
    "gas_cap_for",
    "plan_batches",
]

DEFAULT_GAS_FRACTION = Fraction(1, 3)
"""Share of the block gas limit one transaction may use."""

DEFAULT_TX_OVERHEAD_GAS = 60_000
"""Gas of a ``liquidate_many`` call beyond its per-account work (intrinsic gas, calldata, loop)."""


@dataclass(frozen=True)
class Batch:
    """Accounts for one ``liquidate_many`` transaction and its estimated gas (overhead included)."""

    accounts: tuple[str, ...]
    gas: int


@dataclass(frozen=True)
class BatchPlan:
    """Batches in priority order, and the accounts that were left out with the reason."""

    batches: list[Batch] = field(default_factory=list)
    oversized: list[str] = field(default_factory=list)
    """Accounts whose estimate alone exceeds the cap: they need a look, not a retry."""
    duplicates: list[str] = field(default_factory=list)
    """Later occurrences of an account already planned (or excluded by ``exclude``)."""


def gas_cap_for(block_gas_limit: int, fraction: Fraction | float = DEFAULT_GAS_FRACTION) -> int:
    """Gas cap per transaction: ``floor(block_gas_limit * fraction)``.

    :raises ValueError: if the limit is not positive or ``fraction`` is not in ``(0, 1]``.
    """
    if block_gas_limit <= 0:
        raise ValueError("block gas limit must be positive")
    frac = Fraction(fraction).limit_denominator(10**9)
    if not 0 < frac <= 1:
        raise ValueError(f"gas fraction must be in (0, 1], got {fraction}")
    return block_gas_limit * frac.numerator // frac.denominator


def plan_batches(
    items: Iterable[tuple[str, int]],
    gas_cap: int,
    *,
    tx_overhead_gas: int = DEFAULT_TX_OVERHEAD_GAS,
    max_accounts: int | None = None,
    exclude: Collection[str] = (),
) -> BatchPlan:
    """Split ``(account, estimated_gas)`` pairs, riskiest first, into batches under ``gas_cap``.

    Each batch's gas is ``tx_overhead_gas`` plus its accounts' estimates and never exceeds
    ``gas_cap``. Order is kept: a batch is closed as soon as the next account does not fit, so the
    accounts of batch ``i`` all come before those of batch ``i + 1``. An account appears in at most
    one batch (addresses compare case-insensitively; the first occurrence wins), and accounts in
    ``exclude`` (for example those locked by a pending transaction) are skipped.

    :param max_accounts: optional bound on accounts per batch (the contract's array bound).
    :raises ValueError: for a negative estimate or a cap that cannot hold even the overhead.
    """
    if gas_cap <= tx_overhead_gas:
        raise ValueError(f"gas cap {gas_cap} does not exceed the per-tx overhead {tx_overhead_gas}")
    if max_accounts is not None and max_accounts < 1:
        raise ValueError("max_accounts must be at least 1")
    seen = {a.lower() for a in exclude}
    plan = BatchPlan()
    current: list[str] = []
    current_gas = tx_overhead_gas

    def close() -> None:
        nonlocal current, current_gas
        if current:
            plan.batches.append(Batch(accounts=tuple(current), gas=current_gas))
        current = []
        current_gas = tx_overhead_gas

    for account, gas in items:
        if gas < 0:
            raise ValueError(f"negative gas estimate for {account}")
        key = account.lower()
        if key in seen:
            plan.duplicates.append(account)
            continue
        seen.add(key)
        if tx_overhead_gas + gas > gas_cap:
            plan.oversized.append(account)
            continue
        full = max_accounts is not None and len(current) >= max_accounts
        if full or current_gas + gas > gas_cap:
            close()
        current.append(account)
        current_gas += gas
    close()
    return plan


# -- packing blocks and learning the gas of a liquidation ---------------------------------------


@dataclass(frozen=True)
class PackingTarget:
    """How large to make each batch so that whole transactions fill blocks."""

    per_block: int
    """Transactions of this size that fit in one block."""
    estimate: int
    """``eth_estimateGas`` a batch should come to (overhead included)."""
    gas_limit: int
    """The gas limit such a batch declares: ``estimate * (1 + margin)``."""


def packing_target(
    block_gas_limit: int,
    gas_cap: int,
    largest_estimate: int,
    *,
    used_ratio: float = 0.8,
    margin: float = 0.05,
    safety: float = 0.99,
    tx_overhead_used: int = 60_000,
    max_per_block: int = 16,
) -> PackingTarget:
    """The batch size (in estimated gas) that packs blocks best.

    Block builders (geth, anvil) admit a transaction while the gas *used* by the transactions
    before it plus its own *declared* gas limit fit in the block. A batch estimated at ``E``
    declares ``E * (1 + margin)`` and uses about ``E * used_ratio`` (refunds make the used gas
    smaller than the estimate), so ``k`` batches fit in a block when
    ``(k - 1) * used_ratio * E + (1 + margin) * E <= block_gas_limit``. A ``k`` is feasible when a
    batch can reach that ``E`` (``largest_estimate``: the contract's longest batch) and its declared
    limit stays under ``gas_cap``. Among the feasible ``k`` up to ``max_per_block``, the smallest
    that puts within 1% of the most liquidation gas in a block wins: more, smaller batches waste
    less of the block on the last one's unused allowance but pay ``tx_overhead_used`` each.
    ``safety`` leaves room for estimates a little off.

    :raises ValueError: for non-positive inputs or ratios out of range.
    """
    if block_gas_limit <= 0 or gas_cap <= 0 or largest_estimate <= 0:
        raise ValueError("gas figures must be positive")
    if not 0 < used_ratio <= 1 or margin < 0 or not 0 < safety <= 1 or max_per_block < 1:
        raise ValueError("ratios out of range")

    def size(k: int) -> int:
        return int(block_gas_limit * safety / ((k - 1) * used_ratio + 1 + margin))

    k = 1
    while not (size(k) <= largest_estimate and size(k) * (1 + margin) <= gas_cap) and size(k) > 21_000:
        k += 1
    fills = {j: j * (size(j) * used_ratio - tx_overhead_used) for j in range(k, max(k, max_per_block) + 1)}
    top = max(fills.values())
    # the fewest transactions within 1% of the best fill: fewer nonces and less overhead
    best = min(j for j, fill in fills.items() if fill >= 0.99 * top)
    e = size(best)
    return PackingTarget(per_block=best, estimate=e, gas_limit=int(e * (1 + margin)))


@dataclass
class GasModel:
    """Expected gas of liquidating an account, learned from ``eth_estimateGas`` of real batches.

    ``estimate(positions) = scale * (per_account + per_extra_position * (positions - 1))``; after
    each estimated batch, ``scale`` moves towards ``estimated / planned`` (an exponential average
    with weight ``alpha``), so planning converges on what the node reports.
    """

    per_account: int = 60_000
    per_extra_position: int = 20_000
    overhead: int = 30_000
    scale: float = 1.0
    alpha: float = 0.5
    used_ratio: float = 0.8
    """Gas used (after refunds) over ``eth_estimateGas``, learned from receipts."""

    def estimate(self, positions: int = 1) -> int:
        """Planned gas of one account with ``positions`` cross positions."""
        base = self.per_account + self.per_extra_position * max(0, positions - 1)
        return int(base * self.scale)

    def observe(self, planned: int, estimated: int, planned_scale: float | None = None) -> None:
        """Learn from a batch planned at ``planned`` gas (overhead included) that the node
        estimated at ``estimated``.

        :param planned_scale: the ``scale`` the batch was planned with (default: the current
            one). Pass it when several batches planned together are observed one after the
            other, so that their corrections do not compound.
        """
        if planned <= self.overhead or estimated <= 0:
            return
        ratio = (estimated - self.overhead) / (planned - self.overhead)
        ratio = min(4.0, max(0.25, ratio))
        implied = (self.scale if planned_scale is None else planned_scale) * ratio
        self.scale = (1 - self.alpha) * self.scale + self.alpha * implied

    def observe_receipt(self, estimated: int, used: int) -> None:
        """Learn the used-over-estimated ratio from a mined batch."""
        if estimated <= 0 or used <= 0:
            return
        ratio = min(1.0, max(0.5, used / estimated))
        self.used_ratio = (1 - self.alpha) * self.used_ratio + self.alpha * ratio


__all__ += ["PackingTarget", "packing_target", "GasModel"]
