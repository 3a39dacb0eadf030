"""Splitting liquidations into transactions under a gas cap."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keeper.batching import gas_cap_for, plan_batches


def test_gas_cap__a_third_of_the_block_by_default() -> None:
    assert gas_cap_for(30_000_000) == 10_000_000
    assert gas_cap_for(30_000_001) == 10_000_000  # rounds down
    assert gas_cap_for(36_000_000, 0.25) == 9_000_000
    assert gas_cap_for(30_000_000, 1 / 3) == 10_000_000  # a float third is read as 1/3


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, Fraction(3, 2)])
def test_gas_cap__fraction_outside_0_1__refused(fraction: float) -> None:
    with pytest.raises(ValueError):
        gas_cap_for(30_000_000, fraction)


def test_plan__fills_in_order_and_closes_at_the_cap() -> None:
    items = [("0xa", 400), ("0xb", 300), ("0xc", 300), ("0xd", 500), ("0xe", 100)]
    plan = plan_batches(items, gas_cap=1100, tx_overhead_gas=100)
    # 100 + 400 + 300 + 300 = 1100 fits exactly; 0xd starts a new batch.
    assert [b.accounts for b in plan.batches] == [("0xa", "0xb", "0xc"), ("0xd", "0xe")]
    assert [b.gas for b in plan.batches] == [1100, 700]
    assert plan.oversized == [] and plan.duplicates == []


def test_plan__one_gas_over_the_cap__starts_a_new_batch() -> None:
    plan = plan_batches([("0xa", 500), ("0xb", 501)], gas_cap=1100, tx_overhead_gas=100)
    assert [b.accounts for b in plan.batches] == [("0xa",), ("0xb",)]


def test_plan__same_account_twice__planned_once_first_wins() -> None:
    plan = plan_batches(
        [("0xAbC", 10), ("0xdef", 10), ("0xabc", 10)], gas_cap=1000, tx_overhead_gas=1
    )
    assert [b.accounts for b in plan.batches] == [("0xAbC", "0xdef")]
    assert plan.duplicates == ["0xabc"]


def test_plan__excluded_and_oversized_accounts__left_out_and_reported() -> None:
    plan = plan_batches(
        [("0xlocked", 10), ("0xhuge", 2000), ("0xok", 10)],
        gas_cap=1000,
        tx_overhead_gas=100,
        exclude={"0xLOCKED"},
    )
    assert [b.accounts for b in plan.batches] == [("0xok",)]
    assert plan.oversized == ["0xhuge"]
    assert plan.duplicates == ["0xlocked"]


def test_plan__max_accounts__bounds_each_batch() -> None:
    plan = plan_batches([(f"0x{i}", 1) for i in range(7)], gas_cap=10**6, max_accounts=3)
    assert [len(b.accounts) for b in plan.batches] == [3, 3, 1]


def test_plan__bad_arguments__refused() -> None:
    with pytest.raises(ValueError):
        plan_batches([("0xa", 1)], gas_cap=100, tx_overhead_gas=100)
    with pytest.raises(ValueError):
        plan_batches([("0xa", -1)], gas_cap=1000, tx_overhead_gas=0)
    with pytest.raises(ValueError):
        plan_batches([("0xa", 1)], gas_cap=1000, max_accounts=0)


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.tuples(st.integers(0, 40).map(lambda i: f"0x{i:02x}"), st.integers(0, 3000)),
        max_size=60,
    ),
    cap=st.integers(1001, 6000),
    overhead=st.integers(0, 1000),
)
def test_plan__any_input__under_cap_ordered_each_account_once(
    items: list[tuple[str, int]], cap: int, overhead: int
) -> None:
    plan = plan_batches(items, gas_cap=cap, tx_overhead_gas=overhead)
    gas = dict(reversed(items))  # the first occurrence's estimate
    planned = [a for b in plan.batches for a in b.accounts]
    assert len(planned) == len(set(planned))
    for batch in plan.batches:
        assert batch.accounts
        assert batch.gas == overhead + sum(gas[a] for a in batch.accounts) <= cap
    # Order: the planned accounts are the first occurrences, in input order, minus oversized.
    firsts = list(dict.fromkeys(a for a, _ in items))
    assert planned == [a for a in firsts if a not in plan.oversized]
    assert all(overhead + gas[a] > cap for a in plan.oversized)
    # Greedy: each batch was closed only because the next account did not fit.
    for current, nxt in zip(plan.batches, plan.batches[1:], strict=False):
        assert current.gas + gas[nxt.accounts[0]] > cap


# -- block packing and the learned gas per account -----------------------------------------------

from keeper.batching import GasModel, packing_target  # noqa: E402


def test_packing_target__whole_batches_fill_a_30m_block() -> None:
    # 200 accounts at 47k would be 9.4M: three such batches would leave a block a quarter empty
    t = packing_target(30_000_000, 10_000_000, 30_000 + 200 * 47_000, used_ratio=0.94, margin=0.05)
    assert t.per_block >= 4
    used = 0.94 * t.estimate
    assert (t.per_block - 1) * used + t.gas_limit <= 30_000_000  # the last still fits
    assert t.per_block * used >= 0.93 * 30_000_000  # and the block is nearly full


def test_packing_target__large_refunds__more_smaller_batches() -> None:
    few = packing_target(30_000_000, 10_000_000, 12_000_000, used_ratio=0.95)
    many = packing_target(30_000_000, 10_000_000, 12_000_000, used_ratio=0.75)
    assert many.per_block > few.per_block


@pytest.mark.parametrize("limit", [15_000_000, 30_000_000, 36_000_000, 60_000_000])
@pytest.mark.parametrize("largest", [1_000_000, 5_000_000, 9_400_000, 40_000_000])
@pytest.mark.parametrize("used", [0.75, 0.95])
def test_packing_target__always_fits_k_per_block_under_the_cap(limit: int, largest: int, used: float) -> None:
    cap = limit // 3
    t = packing_target(limit, cap, largest, used_ratio=used, margin=0.05)
    assert t.estimate <= largest and t.gas_limit <= cap
    assert (t.per_block - 1) * used * t.estimate + t.gas_limit <= limit


def test_packing_target__rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        packing_target(0, 1, 1)
    with pytest.raises(ValueError):
        packing_target(30_000_000, 10_000_000, 1_000_000, used_ratio=1.5)


def test_gas_model__learns_the_used_over_estimated_ratio() -> None:
    model = GasModel(used_ratio=0.9)
    for _ in range(10):
        model.observe_receipt(8_000_000, 7_600_000)
    assert abs(model.used_ratio - 0.95) < 0.001
    model.observe_receipt(0, 5)
    assert abs(model.used_ratio - 0.95) < 0.001


def test_gas_model__converges_on_the_node_estimates() -> None:
    model = GasModel(per_account=40_000, overhead=30_000)
    assert model.estimate(1) == 40_000 and model.estimate(2) > model.estimate(1)
    for _ in range(12):
        planned = model.overhead + 100 * model.estimate(1)
        model.observe(planned, model.overhead + 100 * 37_500)
    assert abs(model.estimate(1) - 37_500) < 100


def test_gas_model__batches_planned_together__corrections_do_not_compound() -> None:
    model = GasModel(per_account=40_000, overhead=30_000)
    planned = model.overhead + 100 * model.estimate(1)
    scale = model.scale
    for _ in range(8):  # eight batches of one pass, all 20% above the plan
        model.observe(planned, model.overhead + 100 * 48_000, scale)
    assert 1.15 < model.scale < 1.2001


def test_gas_model__ignores_nonsense_and_bounds_each_step() -> None:
    model = GasModel()
    model.observe(0, 100)
    model.observe(1_000_000, 0)
    assert model.scale == 1.0
    model.observe(100_000, 10**12)
    assert model.scale <= 2.5
