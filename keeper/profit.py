"""Whether a liquidation batch's reward pays for its gas.

Units: rewards and profits are WAD USD; gas is in gas units; the fee in wei per gas; the ETH price
in WAD USD per whole ether (1e18 wei), so ``gas * fee * price / 1e18`` is the cost in WAD USD. The
cost rounds up and is compared with the reward as is: the keeper never sends on a rounding
favour.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeper.units import WAD

__all__ = ["ProfitDecision", "gas_cost_usd", "evaluate_profit"]


@dataclass(frozen=True)
class ProfitDecision:
    """The outcome of a profitability check, with the figures behind it."""

    send: bool
    reward_usd: int
    gas_cost_usd: int
    min_profit_usd: int
    reason: str

    @property
    def profit_usd(self) -> int:
        """Expected reward minus gas cost, WAD USD (may be negative)."""
        return self.reward_usd - self.gas_cost_usd


def gas_cost_usd(gas: int, fee_per_gas_wei: int, eth_price_wad: int) -> int:
    """Gas cost in WAD USD, rounded up.

    :raises ValueError: for negative inputs.
    """
    if gas < 0 or fee_per_gas_wei < 0 or eth_price_wad < 0:
        raise ValueError("gas, fee and price must not be negative")
    return -((-gas * fee_per_gas_wei * eth_price_wad) // WAD)


def _usd(wad: int) -> str:
    sign = "-" if wad < 0 else ""
    return f"{sign}${abs(wad) / WAD:,.4f}"


def evaluate_profit(
    reward_usd: int,
    gas: int,
    fee_per_gas_wei: int,
    eth_price_wad: int,
    *,
    min_profit_usd: int = 0,
) -> ProfitDecision:
    """Decide whether to send a batch expected to earn ``reward_usd`` and to use ``gas``.

    Send when ``reward - cost >= min_profit_usd``. ``fee_per_gas_wei`` should be the price the
    transaction is expected to pay (see :func:`keeper.fees.effective_gas_price`), or its
    ``maxFeePerGas`` for a worst-case view.

    :raises ValueError: for a negative reward, a negative minimum or a non-positive ETH price.
    """
    if reward_usd < 0:
        raise ValueError("reward must not be negative")
    if min_profit_usd < 0:
        raise ValueError("minimum profit must not be negative")
    if eth_price_wad <= 0:
        raise ValueError("ETH price must be positive")
    cost = gas_cost_usd(gas, fee_per_gas_wei, eth_price_wad)
    profit = reward_usd - cost
    if reward_usd == 0:
        send, reason = False, "no reward expected"
    elif profit < min_profit_usd:
        send = False
        reason = (
            f"reward {_usd(reward_usd)} minus gas {_usd(cost)} is {_usd(profit)}, "
            f"below the minimum profit {_usd(min_profit_usd)}"
        )
    else:
        send = True
        reason = f"reward {_usd(reward_usd)} minus gas {_usd(cost)} is {_usd(profit)}"
    return ProfitDecision(
        send=send,
        reward_usd=reward_usd,
        gas_cost_usd=cost,
        min_profit_usd=min_profit_usd,
        reason=reason,
    )
