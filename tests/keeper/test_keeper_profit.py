"""Whether a batch's reward pays for its gas."""

from __future__ import annotations

import pytest

from keeper.profit import evaluate_profit, gas_cost_usd

WAD = 10**18
GWEI = 10**9
ETH_PRICE = 2000 * WAD


def test_gas_cost__gas_times_fee_times_eth_price() -> None:
    # 200k gas at 50 gwei = 0.01 ETH = $20 at $2000.
    assert gas_cost_usd(200_000, 50 * GWEI, ETH_PRICE) == 20 * WAD


def test_gas_cost__rounds_up() -> None:
    assert gas_cost_usd(1, 1, 1) == 1  # 1e-18 of a wei-dollar, charged as 1
    assert gas_cost_usd(0, 50 * GWEI, ETH_PRICE) == 0


def test_evaluate__reward_above_cost__send() -> None:
    decision = evaluate_profit(25 * WAD, 200_000, 50 * GWEI, ETH_PRICE)
    assert decision.send
    assert decision.gas_cost_usd == 20 * WAD
    assert decision.profit_usd == 5 * WAD
    assert "$5.0000" in decision.reason


def test_evaluate__reward_below_cost__skip_with_reason() -> None:
    decision = evaluate_profit(19 * WAD, 200_000, 50 * GWEI, ETH_PRICE)
    assert not decision.send
    assert decision.profit_usd == -WAD
    assert "below the minimum profit" in decision.reason


def test_evaluate__minimum_profit__boundary_sends_one_wei_short_skips() -> None:
    assert evaluate_profit(25 * WAD, 200_000, 50 * GWEI, ETH_PRICE, min_profit_usd=5 * WAD).send
    assert not evaluate_profit(
        25 * WAD - 1, 200_000, 50 * GWEI, ETH_PRICE, min_profit_usd=5 * WAD
    ).send


def test_evaluate__no_reward__skip() -> None:
    decision = evaluate_profit(0, 0, 0, ETH_PRICE)
    assert not decision.send
    assert decision.reason == "no reward expected"


@pytest.mark.parametrize(
    "args",
    [(-1, 1, 1, ETH_PRICE, 0), (1, -1, 1, ETH_PRICE, 0), (1, 1, 1, 0, 0), (1, 1, 1, ETH_PRICE, -1)],
)
def test_evaluate__invalid_inputs__refused(args: tuple[int, int, int, int, int]) -> None:
    reward, gas, fee, price, minimum = args
    with pytest.raises(ValueError):
        evaluate_profit(reward, gas, fee, price, min_profit_usd=minimum)
