"""EIP-1559 fees and replacement bumps."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.fees import (
    GWEI,
    FeeCapReached,
    Fees,
    bump_fees,
    effective_gas_price,
    gwei_to_wei,
    initial_fees,
    replacement_fees,
    try_bump,
)

CAP = 1_000 * GWEI


def node_accepts(old: Fees, new: Fees, bump_permille: int = 1125) -> bool:
    """A node's replacement rule (geth's, with a 12.5% price bump), in integers."""
    return (
        new.max_fee_per_gas * 1000 >= old.max_fee_per_gas * bump_permille
        and new.max_priority_fee_per_gas * 1000 >= old.max_priority_fee_per_gas * bump_permille
    )


def test_initial__base_fee_times_multiplier_plus_tip() -> None:
    fees = initial_fees(30 * GWEI, 2 * GWEI, max_fee_cap=CAP)
    assert fees == Fees(62 * GWEI, 2 * GWEI)
    assert (
        initial_fees(7, 1, max_fee_cap=CAP, base_fee_multiplier=Decimal("1.5")).max_fee_per_gas
        == 12
    )


def test_initial__clamped_to_the_cap() -> None:
    fees = initial_fees(600 * GWEI, 500 * GWEI, max_fee_cap=CAP)
    assert fees.max_fee_per_gas == CAP
    assert fees.max_priority_fee_per_gas == 500 * GWEI


def test_initial__base_fee_above_cap__raises() -> None:
    with pytest.raises(FeeCapReached) as info:
        initial_fees(CAP + 1, 0, max_fee_cap=CAP)
    assert info.value.cap == CAP


def test_bump__exact_12_5_percent_boundary() -> None:
    # 8 * 1.125 = 9 exactly: 9 is enough, nothing more is added.
    assert bump_fees(Fees(8, 8), max_fee_cap=CAP) == Fees(9, 9)
    # 1 gwei * 1.125 is exact too.
    assert bump_fees(Fees(GWEI, GWEI), max_fee_cap=CAP) == Fees(1_125_000_000, 1_125_000_000)
    # 100 * 1.125 = 112.5: rounded up to 113, since 112 would be refused.
    bumped = bump_fees(Fees(100, 100), max_fee_cap=CAP)
    assert bumped == Fees(113, 113)
    assert not node_accepts(Fees(100, 100), Fees(112, 112))
    assert node_accepts(Fees(100, 100), bumped)


def test_bump__zero_tip__still_rises() -> None:
    assert bump_fees(Fees(10, 0), max_fee_cap=CAP) == Fees(12, 1)


@pytest.mark.parametrize("percent", ["12.4999", 10, 0])
def test_bump__below_12_5_percent__refused(percent: object) -> None:
    with pytest.raises(ValueError, match="12.5"):
        bump_fees(Fees(100, 1), max_fee_cap=CAP, percent=percent)  # type: ignore[arg-type]


def test_bump__larger_percent__used() -> None:
    assert bump_fees(Fees(100, 10), max_fee_cap=CAP, percent=50) == Fees(150, 15)


def test_bump__reaching_the_cap_exactly__allowed_one_wei_over__refused() -> None:
    assert bump_fees(Fees(800, 8), max_fee_cap=900) == Fees(900, 9)
    with pytest.raises(FeeCapReached) as info:
        bump_fees(Fees(800, 8), max_fee_cap=899)
    assert info.value.needed == 900
    assert try_bump(Fees(800, 8), max_fee_cap=899) is None


def test_bump__repeated__stops_at_the_cap() -> None:
    fees = Fees(10 * GWEI, GWEI)
    steps = 0
    while (nxt := try_bump(fees, max_fee_cap=CAP)) is not None:
        assert node_accepts(fees, nxt)
        fees = nxt
        steps += 1
    assert fees.max_fee_per_gas <= CAP
    assert fees.max_fee_per_gas * 1125 > CAP * 1000  # one more bump would cross the cap
    assert steps == 39  # 10 gwei * 1.125**39 ~ 989 gwei


@settings(max_examples=300, deadline=None)
@given(max_fee=st.integers(0, 10**13), tip_share=st.integers(0, 100))
def test_bump__any_fees__accepted_by_nodes_and_minimal(max_fee: int, tip_share: int) -> None:
    old = Fees(max_fee, max_fee * tip_share // 100)
    new = bump_fees(old, max_fee_cap=10**15)
    assert node_accepts(old, new)
    assert new.max_priority_fee_per_gas <= new.max_fee_per_gas
    # Minimal: one wei less would fail the 12.5% rule (unless the +1 floor applied).
    if old.max_fee_per_gas >= 8:
        assert (new.max_fee_per_gas - 1) * 1000 < old.max_fee_per_gas * 1125


def test_replacement__follows_a_rising_base_fee() -> None:
    old = Fees(20 * GWEI, GWEI)
    fees = replacement_fees(old, base_fee=50 * GWEI, priority_fee=GWEI, max_fee_cap=CAP)
    assert fees.max_fee_per_gas == 101 * GWEI  # fresh fees beat the 12.5% bump
    assert fees.max_priority_fee_per_gas == 1_125_000_000  # the bump beats the fresh tip
    assert node_accepts(old, fees)


def test_replacement__cap__raises() -> None:
    with pytest.raises(FeeCapReached):
        replacement_fees(Fees(CAP, GWEI), base_fee=GWEI, priority_fee=GWEI, max_fee_cap=CAP)


def test_effective_price__base_plus_tip_under_max() -> None:
    assert effective_gas_price(Fees(100, 5), base_fee=50) == 55
    assert effective_gas_price(Fees(100, 5), base_fee=99) == 100


def test_fees__invalid__refused() -> None:
    with pytest.raises(ValueError):
        Fees(1, 2)
    with pytest.raises(ValueError):
        Fees(-1, 0)


def test_gwei_to_wei() -> None:
    assert gwei_to_wei(Decimal("1.5")) == 1_500_000_000
    assert gwei_to_wei("0.000000001") == 1
    assert gwei_to_wei(300) == 300 * GWEI
