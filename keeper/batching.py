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
