"""EIP-1559 fees for keeper transactions and their replacement bumps.

A replacement (same nonce) is only accepted by nodes when both ``maxFeePerGas`` and
``maxPriorityFeePerGas`` rise by at least their price bump (geth: 10%, others up to 12.5%). The
keeper bumps by at least 12.5% and rounds *up* to the wei, so the replacement never falls a wei
short of a node's threshold. Every fee stays under a configured cap; when the next step would cross
it, :class:`FeeCapReached` is raised (or ``None`` returned by :func:`try_bump`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

__all__ = [
    "MIN_BUMP_PERCENT",
    "GWEI",
    "Fees",
    "FeeCapReached",
    "gwei_to_wei",
    "initial_fees",
    "bump_fees",
    "try_bump",
    "replacement_fees",
    "effective_gas_price",
]

GWEI = 10**9
MIN_BUMP_PERCENT = Decimal("12.5")
"""Smallest replacement bump the keeper uses, in percent."""

Number = int | float | Decimal | Fraction | str


class FeeCapReached(Exception):
    """The fees needed exceed the configured ``max_fee_cap`` (wei per gas)."""

    def __init__(self, needed: int, cap: int, what: str) -> None:
        super().__init__(f"{what} needs maxFeePerGas {needed} wei, above the cap of {cap} wei")
        self.needed = needed
        self.cap = cap


@dataclass(frozen=True)
class Fees:
    """EIP-1559 fee fields of a transaction, in wei per gas."""

    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __post_init__(self) -> None:
        if self.max_fee_per_gas < 0 or self.max_priority_fee_per_gas < 0:
            raise ValueError("fees must not be negative")
        if self.max_priority_fee_per_gas > self.max_fee_per_gas:
            raise ValueError("maxPriorityFeePerGas must not exceed maxFeePerGas")

    def as_tx_fields(self) -> dict[str, int]:
        """The fees as web3 transaction fields."""
        return {
            "maxFeePerGas": self.max_fee_per_gas,
            "maxPriorityFeePerGas": self.max_priority_fee_per_gas,
        }


def _fraction(value: Number) -> Fraction:
    if isinstance(value, float):
        return Fraction(str(value))
    return Fraction(value)


def _ceil_mul(value: int, factor: Fraction) -> int:
    return math.ceil(value * factor)


def gwei_to_wei(value: Number) -> int:
    """Convert gwei (``Decimal``, string, int) to wei, rounding down."""
    return math.floor(_fraction(value) * GWEI)


def initial_fees(
    base_fee: int,
    priority_fee: int,
    *,
    max_fee_cap: int,
    base_fee_multiplier: Number = 2,
) -> Fees:
    """Fees for a new transaction: ``maxFee = ceil(base_fee * multiplier) + priority_fee``.

    A multiplier of 2 keeps the transaction includable through six full blocks of base fee rises.
    ``maxFee`` is clamped to ``max_fee_cap`` and the priority fee to ``maxFee``.

    :raises FeeCapReached: if the current ``base_fee`` alone is above the cap (the transaction
        could not be included now).
    :raises ValueError: for negative inputs or a multiplier below 1.
    """
    mult = _fraction(base_fee_multiplier)
    if base_fee < 0 or priority_fee < 0 or max_fee_cap < 0:
        raise ValueError("fees must not be negative")
    if mult < 1:
        raise ValueError("base fee multiplier must be at least 1")
    if base_fee > max_fee_cap:
        raise FeeCapReached(base_fee, max_fee_cap, "the current base fee")
    max_fee = min(_ceil_mul(base_fee, mult) + priority_fee, max_fee_cap)
    return Fees(max_fee_per_gas=max_fee, max_priority_fee_per_gas=min(priority_fee, max_fee))


def _check_percent(percent: Number) -> Fraction:
    pct = _fraction(percent)
    if pct < _fraction(MIN_BUMP_PERCENT):
        raise ValueError(f"bump must be at least {MIN_BUMP_PERCENT}%, got {percent}%")
    return pct


def bump_fees(old: Fees, *, max_fee_cap: int, percent: Number = MIN_BUMP_PERCENT) -> Fees:
    """Fees for a replacement of a transaction sent with ``old``.

    Each field becomes ``ceil(old * (1 + percent / 100))``, and at least ``old + 1``.

    :raises FeeCapReached: if the bumped ``maxFeePerGas`` would exceed ``max_fee_cap``.
    :raises ValueError: if ``percent`` is below 12.5.
    """
    factor = 1 + _check_percent(percent) / 100
    new_max = max(_ceil_mul(old.max_fee_per_gas, factor), old.max_fee_per_gas + 1)
    new_tip = max(_ceil_mul(old.max_priority_fee_per_gas, factor), old.max_priority_fee_per_gas + 1)
    if new_max > max_fee_cap:
        raise FeeCapReached(new_max, max_fee_cap, "the replacement")
    return Fees(max_fee_per_gas=new_max, max_priority_fee_per_gas=new_tip)


def try_bump(old: Fees, *, max_fee_cap: int, percent: Number = MIN_BUMP_PERCENT) -> Fees | None:
    """Like :func:`bump_fees`, but ``None`` when the cap is reached."""
    try:
        return bump_fees(old, max_fee_cap=max_fee_cap, percent=percent)
    except FeeCapReached:
        return None


def replacement_fees(
    old: Fees,
    *,
    base_fee: int,
    priority_fee: int,
    max_fee_cap: int,
    percent: Number = MIN_BUMP_PERCENT,
    base_fee_multiplier: Number = 2,
) -> Fees:
    """Fees for replacing a stuck transaction under the current market.

    The larger, field by field, of the minimum bump over ``old`` and fresh fees for the current
    ``base_fee`` and ``priority_fee``: the replacement is accepted by nodes and can be included.

    :raises FeeCapReached: if either would exceed ``max_fee_cap``.
    """
    bumped = bump_fees(old, max_fee_cap=max_fee_cap, percent=percent)
    fresh = initial_fees(
        base_fee, priority_fee, max_fee_cap=max_fee_cap, base_fee_multiplier=base_fee_multiplier
    )
    return Fees(
        max_fee_per_gas=max(bumped.max_fee_per_gas, fresh.max_fee_per_gas),
        max_priority_fee_per_gas=max(
            bumped.max_priority_fee_per_gas, fresh.max_priority_fee_per_gas
        ),
    )


def effective_gas_price(fees: Fees, base_fee: int) -> int:
    """Price per gas paid when included at ``base_fee``: ``min(maxFee, base_fee + tip)``."""
    return min(fees.max_fee_per_gas, base_fee + fees.max_priority_fee_per_gas)
