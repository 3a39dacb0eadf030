"""The checks of the fuzz machine, each a plain function that raises AssertionError.

Invariants (`INVARIANTS`) hold after every step and take (constants, state before the step, state
after it, the step). Action checks compare one action's effects with the model's prediction and
take what they need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from model import WAD, ceil_div

from fuzz import predict
from fuzz.protocol import Constants, State


@dataclass
class Step:
    """What a step may change: the accounts it acts for (their records may change), whether prices
    moved (every health may change), and the pool's exact gain in WAD (None: not predicted)."""

    name: str
    actors: frozenset[str] = frozenset()
    prices_moved: bool = False
    pool_gain: int | None = 0


# -- after every step --------------------------------------------------------------------------


def tokens_back_every_claim(c: Constants, before: State, s: State, step: Step) -> None:
    """engine tokens * scale == sum(collateral) + insurance + pool_owed exactly, the pool's dust in
    [0, scale), and the pool's assets are its token balance."""
    assert 0 <= s.pool_owed < c.scale, f"pool_owed {s.pool_owed} outside [0, {c.scale})"
    claims = sum(a.collateral for a in s.accounts.values()) + s.insurance + s.pool_owed
    assert s.engine_tokens * c.scale == claims, f"engine holds {s.engine_tokens * c.scale}, owes {claims}"
    assert s.pool_assets == s.pool_tokens, f"pool totalAssets {s.pool_assets} != balance {s.pool_tokens}"


def no_tokens_appear_or_vanish(c: Constants, before: State, s: State, step: Step) -> None:
    """Every token is held by an actor, the engine or the pool (the harness mints only at setup)."""
    held = s.engine_tokens + s.pool_tokens + sum(a.tokens for a in s.accounts.values())
    assert held == s.token_supply, f"tokens held {held} != supply {s.token_supply}"


def open_interest_is_sum_of_positions(c: Constants, before: State, s: State, step: Step) -> None:
    for m, mk in enumerate(s.markets):
        longs = sum(max(a.positions[m].size, 0) for a in s.accounts.values())
        shorts = sum(max(-a.positions[m].size, 0) for a in s.accounts.values())
        assert (mk.oi_long, mk.oi_short) == (longs, shorts), f"market {m}: oi {mk.oi_long}/{mk.oi_short}, positions {longs}/{shorts}"


def account_list_is_position_holders(c: Constants, before: State, s: State, step: Step) -> None:
    holders = {a for a, acc in s.accounts.items() if any(p.size != 0 for p in acc.positions)}
    assert len(s.listed) == len(set(s.listed)), f"account listed twice: {s.listed}"
    assert set(s.listed) == holders, f"listed {sorted(s.listed)}, holding {sorted(holders)}"


def masks_match_positions(c: Constants, before: State, s: State, step: Step) -> None:
    for a, acc in s.accounts.items():
        want = sum(1 << m for m, p in enumerate(acc.positions) if p.size != 0)
        assert acc.mask == want, f"{a}: position_mask {acc.mask:b}, positions give {want:b}"
        for p in acc.positions:
            assert p.size != 0 or p.cost == 0, f"{a}: a closed position keeps cost {p.cost}"


def health_matches_model(c: Constants, before: State, s: State, step: Step) -> None:
    """health(a) equals the model's, and healths([...]) (the keeper's view) equals health(a)."""
    for a, acc in s.accounts.items():
        want = predict.health(s, a)
        got = acc.health
        assert tuple(got[:4]) == (want.equity, want.initial_req, want.maintenance_req, want.liquidatable), f"{a}: health {got}, model {want}"
        assert acc.batch_health == got, f"{a}: healths() gives {acc.batch_health}, health() {got}"


def liquidatable_list_matches(c: Constants, before: State, s: State, step: Step) -> None:
    want = [a for a in s.listed if s.accounts[a].health.liquidatable]
    assert s.liquidatable == want, f"liquidatable_accounts {s.liquidatable}, health says {want}"


def others_untouched(c: Constants, before: State, s: State, step: Step) -> None:
    """At unchanged prices an action changes nothing of an account it does not act for: not its
    collateral, positions, tokens or health (a trade moves the skew, which only moves the fill)."""
    if step.prices_moved:
        return
    for a, acc in s.accounts.items():
        if a not in step.actors:
            assert acc == before.accounts[a], f"{step.name} changed {a}: {before.accounts[a]} -> {acc}"


def pool_gain_as_predicted(c: Constants, before: State, s: State, step: Step) -> None:
    """The pool's value (its tokens plus what the engine owes it) moves by exactly the model's gain."""
    if step.pool_gain is None:
        return
    gain = (s.pool_tokens - before.pool_tokens) * c.scale + s.pool_owed - before.pool_owed
    assert gain == step.pool_gain, f"pool gained {gain}, model says {step.pool_gain}"


INVARIANTS: list[Callable[[Constants, State, State, Step], None]] = [
    tokens_back_every_claim,
    no_tokens_appear_or_vanish,
    open_interest_is_sum_of_positions,
    account_list_is_position_holders,
    masks_match_positions,
    health_matches_model,
    liquidatable_list_matches,
    others_untouched,
    pool_gain_as_predicted,
]


# -- after one action --------------------------------------------------------------------------


def events(sent: list[Any], name: str) -> list[Any]:
    """The decoded events called `name` of mined transactions, in order."""
    return [e for s in sent for e in s.logs if type(e).__name__ == name]


def refusal_expected(reason: str | None, refusals: set[str], what: str) -> None:
    assert refusals, f"{what}: the engine refused ({reason}), the model accepts"
    assert reason in refusals, f"{what}: the engine refused with {reason!r}, the model expects one of {sorted(refusals)}"


def trade_matches(pred: predict.Trade, sent: Any, after: State, account: str, m: int, delta: int) -> None:
    [ev] = events([sent], "Trade")
    assert sent.value == pred.fill, f"fill {sent.value}, model {pred.fill}"
    got = (ev.account, ev.market_id, ev.size_delta, ev.fill_price, ev.fee, ev.realized_pnl, ev.new_size)
    want = (account, m, delta, pred.fill, pred.fee, pred.realized, pred.new_size)
    assert got == want, f"Trade event {got}, model {want}"
    pos = after.accounts[account].positions[m]
    assert (pos.size, pos.cost) == (pred.new_size, pred.new_cost), f"position {pos}, model {(pred.new_size, pred.new_cost)}"
    assert after.accounts[account].collateral == pred.collateral


def liquidations_are_sound(c: Constants, sent: Any, before: State, after: State) -> None:
    """Model-free: every liquidated account is closed or back at or above liq_target x maintenance;
    bad debt only on an account left with no position and no collateral, paid by the insurance
    fund as far as the fund (before it, after the account's penalty and reward) allows, the rest
    written off against the pool."""
    target = c.liquidation.liq_target
    bad = {e.account: e for e in events([sent], "BadDebt")}
    fund = before.insurance
    logs = events([sent], "Liquidation")
    for ev in logs:
        acc = after.accounts[ev.account]
        if acc.mask:
            need = ceil_div(target * acc.health.maintenance_req, WAD)
            assert acc.health.equity >= need, f"{ev.account}: partial liquidation left equity {acc.health.equity} < target {need}"
        fund = max(fund + ev.penalty_paid - ev.reward, 0)
        b = bad.pop(ev.account, None)
        if b is not None:
            assert acc.mask == 0 and acc.collateral == 0, f"{ev.account}: bad debt recorded on an account left open or holding collateral"
            assert b.insurance_paid == min(b.amount, fund), f"insurance paid {b.insurance_paid} of {b.amount} with {fund} in the fund"
            assert b.insurance_paid + b.pool_written_off == b.amount, f"bad debt split {b}"
            fund -= b.insurance_paid
    assert not bad, f"bad debt without a liquidation: {bad}"
    reward = sum(ev.reward for ev in logs)  # paid once, in whole tokens; the rest stays in the fund
    want = fund + reward % c.scale
    assert after.insurance == want, f"insurance {after.insurance}, events give {want}"


def liquidations_match_model(c: Constants, pred: predict.Liquidations, sent: Any, after: State, caller: str, tokens_before: int) -> None:
    """Events, positions, collateral, bad debt, insurance and the caller's pay against the model."""
    logs = events([sent], "Liquidation")
    assert [e.account for e in logs] == [d.account for d in pred.done], "liquidated accounts differ from the model"
    per_position = events([sent], "PositionLiquidated")
    bad = {e.account: e for e in events([sent], "BadDebt")}
    shortfalls = [e.amount for e in events([sent], "InsuranceShortfall")]
    k = 0
    for ev, d in zip(logs, pred.done):
        r = d.result
        got = (ev.liquidator, ev.fraction, ev.full, ev.closed_notional, ev.penalty, ev.penalty_paid, ev.reward)
        assert got == (caller, r.fraction, r.full, r.closed_notional, r.penalty, r.paid, r.reward), f"Liquidation {ev}, model {r}"
        for m, closed, realized, size, cost in zip(d.markets, r.closed, r.realized_each, r.new_sizes, r.new_costs):
            if closed:
                p = per_position[k]
                k += 1
                assert (p.account, p.market_id, p.size_closed, p.realized_pnl) == (d.account, m, closed, realized)
            pos = after.accounts[d.account].positions[m]
            assert (pos.size, pos.cost) == (size, cost), f"{d.account} market {m}: {pos}, model {(size, cost)}"
        acc = after.accounts[d.account]
        assert acc.collateral == r.collateral_after, f"collateral {acc.collateral}, model {r.collateral_after}"
        assert bool(acc.mask) != r.full
        if r.bad_debt:
            b = bad.pop(d.account)
            assert (b.amount, b.insurance_paid, b.pool_written_off) == (r.bad_debt, r.bad_debt_insurance_paid, r.bad_debt_written_off)
    assert k == len(per_position), "more PositionLiquidated events than closes"
    assert not bad, f"bad debt the model does not expect: {bad}"
    assert shortfalls == [d.result.reward_shortfall for d in pred.done if d.result.reward_shortfall]
    assert after.insurance == pred.insurance, f"insurance {after.insurance}, model {pred.insurance}"
    paid = (after.accounts[caller].tokens - tokens_before) * c.scale
    assert paid == pred.reward_paid, f"caller got {paid}, model {pred.reward_paid}"
