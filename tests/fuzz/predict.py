"""What the independent model (tests/model.py) says an action must do, from the state before it.

Each prediction names the reasons the engine may refuse with (empty: it must accept) and, when it
accepts, the exact outcome to compare with the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import model
from model import WAD, ceil_div

from fuzz.protocol import Constants, State


def market_params(state: State, m: int) -> model.MarketParams:
    p = state.markets[m].params
    return model.MarketParams(state.mmf[m], p.imf, p.im_multiplier, p.liq_penalty, p.taker_fee, p.skew_scale, p.min_position_notional)


def liq_params(c: Constants) -> model.LiqParams:
    q = c.liquidation
    return model.LiqParams(q.liq_target, q.keeper_share, q.min_keeper_reward, q.max_keeper_reward)


def positions(state: State, account: str) -> list[tuple[int, model.Pos]]:
    """The account's open positions as the model sees them, by ascending market id."""
    out = []
    for m, pos in enumerate(state.accounts[account].positions):
        if pos.size != 0:
            out.append((m, model.Pos(pos.size, pos.cost, state.prices[m], market_params(state, m))))
    return out


def health(state: State, account: str) -> model.Health:
    return model.account_health(state.accounts[account].collateral, [p for _, p in positions(state, account)])


@dataclass
class Trade:
    """A trade's refusal reasons, or its fill, fee, new position and collateral."""

    refusals: set[str]
    fill: int = 0
    fee: int = 0
    new_size: int = 0
    new_cost: int = 0
    realized: int = 0
    collateral: int = 0

    @property
    def pool_gain(self) -> int:
        return self.fee - self.realized


def trade(state: State, c: Constants, account: str, m: int, delta: int, acceptable_price: int | None = None) -> Trade:
    """A trade of `delta` in market m (a buy pays at most, a sell receives at least
    `acceptable_price`; None: no limit)."""
    mk = state.markets[m]
    mp = market_params(state, m)
    price = state.prices[m]
    a = state.accounts[account]
    pos = a.positions[m]
    try:
        fill = model.fill_price(price, mk.oi_long - mk.oi_short, delta, mp.skew_scale)
    except ValueError:
        return Trade({"engine: fill price"})
    new_size, new_cost, realized = model.apply_trade(pos.size, pos.cost, delta, fill)
    fee = model.trade_fee(delta, fill, mp.taker_fee)
    increasing = pos.size == 0 or (pos.size > 0) == (delta > 0) or abs(delta) > abs(pos.size)
    oi_long = mk.oi_long - max(pos.size, 0) + max(new_size, 0)
    oi_short = mk.oi_short - max(-pos.size, 0) + max(-new_size, 0)
    refusals = set()
    if acceptable_price is not None and (fill > acceptable_price if delta > 0 else fill < acceptable_price):
        refusals.add("engine: price limit")
    if increasing:
        if (new_size > 0 and oi_long > mk.params.max_oi_long) or (new_size < 0 and oi_short > mk.params.max_oi_short):
            refusals.add("engine: open interest cap")
        if abs(oi_long - oi_short) * price // WAD > state.pool_assets * c.scale * c.max_pool_usage // WAD:
            refusals.add("engine: pool exposure")
    if new_size != 0 and ceil_div(abs(new_size) * price, WAD) < mp.min_position_notional:
        refusals.add("engine: position too small")
    collateral = a.collateral + realized - fee
    after = [p for i, p in positions(state, account) if i != m]
    if new_size != 0:
        after.append(model.Pos(new_size, new_cost, price, mp))
    if after:
        if not model.post_trade_ok(collateral, after, increases=increasing):
            refusals.add("engine: insufficient margin" if increasing else "engine: account underwater")
    elif collateral < 0:
        refusals.add("engine: account underwater")
    return Trade(refusals, fill, fee, new_size, new_cost, realized, collateral)


def withdraw(state: State, c: Constants, account: str, amount: int) -> set[str]:
    """The reasons the engine must refuse a withdrawal of `amount` token units with."""
    left = state.accounts[account].collateral - amount * c.scale
    if left < 0:
        return {"engine: insufficient collateral"}
    open_ = [p for _, p in positions(state, account)]
    if open_:
        h = model.account_health(left, open_)
        if h.equity < h.initial_req:
            return {"engine: insufficient margin"}
    return set()


@dataclass
class Liquidated:
    account: str
    markets: list[int]  # market ids of the model result's positions, in order
    result: model.LiqResult


@dataclass
class Liquidations:
    """One `liquidate` or `liquidate_many`: who is liquidated and how, and the totals."""

    done: list[Liquidated] = field(default_factory=list)
    insurance: int = 0  # the fund after the call
    reward: int = 0  # WAD owed to the caller
    reward_paid: int = 0  # WAD paid, in whole tokens
    pool_gain: int = 0


def liquidations(state: State, c: Constants, accounts: list[str]) -> Liquidations:
    """The liquidation of each liquidatable account of `accounts` in turn, at the state's prices.

    The call pays the caller once, at the end, in whole tokens; the sub-token rest of the total
    goes to the insurance fund.
    """
    out = Liquidations(insurance=state.insurance)
    seen = set()
    for a in accounts:
        if a in seen:  # once liquidated it is healthy or closed: a second entry is skipped
            continue
        seen.add(a)
        found = positions(state, a)
        try:
            r = model.liquidate(state.accounts[a].collateral, [p for _, p in found], liq_params(c), out.insurance, scale=c.scale)
        except model.NotLiquidatable:
            continue
        out.insurance = r.insurance_after - (r.reward - r.reward_tokens * c.scale)
        out.done.append(Liquidated(a, [m for m, _ in found], r))
        out.reward += r.reward
        out.pool_gain += r.pool_delta
    out.reward_paid = out.reward // c.scale * c.scale
    out.insurance += out.reward - out.reward_paid
    return out
