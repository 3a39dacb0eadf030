"""Liquidation: who can be liquidated, how much is closed, where the penalty, the reward and the bad
debt go. Every liquidation here is predicted by the independent model first, then compared field by
field with what the engine did."""

import ape
import pytest

import model
from helpers import BTC, ETH, WAD, assert_solvent, model_params

ZERO = "0x0000000000000000000000000000000000000000"


def model_market(env, market_id):
    return model_params(env, market_id)


def model_liq(env):
    q = env.config.liquidation_params()
    return model.LiqParams(q.liq_target, q.keeper_share, q.min_keeper_reward, q.max_keeper_reward)


def model_account(env, account):
    """(collateral, [Pos], [market ids]) of an account, read from the chain."""
    ids, positions = [], []
    mask = env.engine.position_mask(account)
    for mid in range(env.engine.n_markets()):
        if mask >> mid & 1:
            p = env.engine.position(account, mid)
            ids.append(mid)
            positions.append(model.Pos(p.size, p.cost, env.engine.price(mid), model_market(env, mid)))
    return env.engine.collateral(account), positions, ids


def liquidate_and_compare(env, account, liquidator):
    """Predicts with the model, liquidates, and checks every effect; returns (tx, prediction)."""
    coll, positions, ids = model_account(env, account)
    insurance = env.engine.insurance_fund()
    expect = model.liquidate(coll, positions, model_liq(env), insurance, scale=env.scale)
    pool_before = env.token.balanceOf(env.pool.address) * env.scale + env.engine.pool_owed()
    keeper_before = env.token.balanceOf(liquidator.address)

    tx = env.engine.liquidate(account, sender=liquidator)

    [log] = tx.decode_logs(env.engine.Liquidation)
    assert log.account == account and log.liquidator == liquidator.address
    assert log.fraction == expect.fraction
    assert log.full == expect.full
    assert log.closed_notional == expect.closed_notional
    assert log.penalty == expect.penalty
    assert log.penalty_paid == expect.paid
    assert log.reward == expect.reward
    pos_logs = tx.decode_logs(env.engine.PositionLiquidated)
    assert [p.size_closed for p in pos_logs] == [c for c in expect.closed if c != 0]
    assert [p.realized_pnl for p in pos_logs] == [r for r, c in zip(expect.realized_each, expect.closed) if c != 0]
    for mid, size, cost in zip(ids, expect.new_sizes, expect.new_costs):
        p = env.engine.position(account, mid)
        assert (p.size, p.cost) == (size, cost)
    assert env.engine.collateral(account) == expect.collateral_after
    assert env.engine.insurance_fund() == expect.insurance_after
    pool_after = env.token.balanceOf(env.pool.address) * env.scale + env.engine.pool_owed()
    assert pool_after - pool_before == expect.pool_delta
    assert env.token.balanceOf(liquidator.address) - keeper_before == expect.reward // env.scale
    assert tx.return_value == (expect.reward // env.scale) * env.scale
    if expect.bad_debt:
        [bd] = tx.decode_logs(env.engine.BadDebt)
        assert bd.amount == expect.bad_debt
        assert bd.insurance_paid == expect.bad_debt_insurance_paid
        assert bd.pool_written_off == expect.bad_debt_written_off
    else:
        assert tx.decode_logs(env.engine.BadDebt) == []
    assert_solvent(env)
    return tx, expect


def fund_insurance(env, who, usd):
    amount = env.mint(who, usd)
    env.token.approve(env.engine.address, amount, sender=who)
    env.engine.fund_insurance(amount, sender=who)


def test_liquidate__healthy_account__reverts(env, trader, liquidator):
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    assert not env.engine.health(trader.address).liquidatable
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(trader.address, sender=liquidator)


def test_liquidate__account_without_position__reverts(env, trader, liquidator):
    env.fund(trader, 1000)
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(trader.address, sender=liquidator)


def test_liquidate__at_exact_maintenance__is_not_liquidatable(env, trader, liquidator):
    """Liquidatable iff E < MM, strictly: find the price where E == MM is not reachable in general,
    so check the boundary through the health view on both sides instead."""
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    lo, hi = 1000 * 10**8, 2000 * 10**8  # feed answers: lo liquidatable, hi healthy
    while hi - lo > 1:
        mid = (lo + hi) // 2
        env.feeds[ETH].set_answer(mid, sender=env.deployer)
        if env.engine.health(trader.address).liquidatable:
            lo = mid
        else:
            hi = mid
    env.feeds[ETH].set_answer(hi, sender=env.deployer)
    h = env.engine.health(trader.address)
    assert h.equity >= h.maintenance_req
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(trader.address, sender=liquidator)
    env.feeds[ETH].set_answer(lo, sender=env.deployer)
    h = env.engine.health(trader.address)
    assert h.equity < h.maintenance_req
    env.engine.liquidate(trader.address, sender=liquidator)


def test_liquidate__partial__restores_target_and_matches_model(env, trader, liquidator, solvent):
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1800)
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert not expect.full and 0 < expect.fraction < WAD
    h = env.engine.health(trader.address)
    target = env.config.liquidation_params().liq_target
    assert h.equity >= model.ceil_div(target * h.maintenance_req, WAD)
    assert not h.liquidatable


def test_liquidate__partial_two_markets__closes_same_fraction_of_each(env, trader, liquidator, solvent):
    env.fund(trader, 3000)
    env.trade(trader, ETH, 6)
    env.trade(trader, BTC, 0.3)
    env.set_price(ETH, 1850)
    env.set_price(BTC, 56000)
    assert env.engine.health(trader.address).liquidatable
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert not expect.full
    h = env.engine.health(trader.address)
    assert h.equity >= model.ceil_div(env.config.liquidation_params().liq_target * h.maintenance_req, WAD)


def test_liquidate__fraction_at_least_one__closes_fully(env, trader, liquidator, solvent):
    """E just above the penalty of a full close: the formula's f reaches 1."""
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1780)  # equity ~ 120, penalty of full close ~ 142: f >= 1
    coll, positions, _ = model_account(env, trader.address)
    h = model.account_health(coll, positions)
    assert 0 < h.equity < h.maintenance_req
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert expect.full and expect.fraction == WAD
    assert env.engine.position_mask(trader.address) == 0


def test_liquidate__remainder_would_be_dust__closes_fully(env, trader, liquidator, solvent):
    env.fund(trader, 13)
    env.trade(trader, ETH, 0.06)  # 120 USD notional, min 50: a partial close would leave dust
    env.set_price(ETH, 1850)
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert expect.full and env.engine.position(trader.address, ETH).size == 0


def test_liquidate__negative_equity__closes_fully_and_insurance_pays_bad_debt(env, trader, liquidator, solvent):
    fund_insurance(env, liquidator, 1000)
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1700)  # loss ~ 1200 > 1000
    assert env.engine.health(trader.address).equity < 0
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert expect.full and expect.bad_debt > 0
    assert expect.bad_debt_insurance_paid == expect.bad_debt and expect.bad_debt_written_off == 0
    assert env.engine.collateral(trader.address) == 0


def test_liquidate__bad_debt_beyond_insurance__written_off_against_pool(env, trader, liquidator, solvent):
    fund_insurance(env, liquidator, 50)
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1600)
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert expect.bad_debt > 0 and expect.bad_debt_written_off > 0
    assert env.engine.insurance_fund() == 0
    [bd] = tx.decode_logs(env.engine.BadDebt)
    assert bd.insurance_paid + bd.pool_written_off == bd.amount


def test_liquidate__empty_insurance__reward_taken_from_pool(env, trader, liquidator, solvent):
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1650)
    assert env.engine.insurance_fund() == 0
    tx, expect = liquidate_and_compare(env, trader.address, liquidator)
    [short] = tx.decode_logs(env.engine.InsuranceShortfall)
    assert short.amount == expect.reward  # nothing was paid by the account, the fund was empty
    assert env.token.balanceOf(liquidator.address) > 0  # an underwater account is still worth it


def test_liquidate__reward_is_clamped_to_floor_and_cap(env, deployer, trader, trader2, liquidator, solvent):
    q = env.config.liquidation_params()
    env.config.set_liquidation_params((q.liq_target, q.keeper_share, q.min_keeper_reward, 10 * WAD), sender=deployer)
    fund_insurance(env, liquidator, 1000)
    env.fund(trader, 30_000)
    env.trade(trader, ETH, 120)
    env.fund(trader2, 22)
    env.trade(trader2, ETH, 0.1)
    env.set_price(ETH, 1780)  # the big account can pay its penalty: the cap binds
    _, big = liquidate_and_compare(env, trader.address, liquidator)
    assert big.reward == 10 * WAD < big.penalty * q.keeper_share // WAD
    env.config.set_liquidation_params((q.liq_target, WAD // 100, q.min_keeper_reward, 10 * WAD), sender=deployer)
    _, small = liquidate_and_compare(env, trader2.address, liquidator)
    assert small.reward == q.min_keeper_reward > small.penalty // 100


def test_liquidate__blocked_by_nothing_the_account_does_with_tokens(env, trader, liquidator, solvent):
    """The account's tokens never move in a liquidation: its collateral stays inside the engine."""
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1800)
    before = env.token.balanceOf(trader.address)
    tx, _ = liquidate_and_compare(env, trader.address, liquidator)
    assert env.token.balanceOf(trader.address) == before
    transfers = tx.decode_logs(env.token.Transfer)
    assert all(trader.address not in (t.sender, t.receiver) for t in transfers)


def test_liquidate__self_liquidation_never_pays(env, trader, solvent):
    """Opening a position and liquidating it yourself leaves you worse off than closing it."""
    start = env.fund(trader, 22) * env.scale
    env.trade(trader, ETH, 0.1)
    env.set_price(ETH, 1850)
    h = env.engine.health(trader.address)
    assert h.liquidatable and h.equity > 0
    equity_before = h.equity
    reward = env.engine.liquidate(trader.address, sender=trader).return_value
    wealth_after = env.engine.health(trader.address).equity + env.token.balanceOf(trader.address) * env.scale
    assert reward > 0
    assert wealth_after <= equity_before < start


# LIQUIDATE_MANY #


def test_liquidate_many__skips_healthy_duplicate_and_empty_entries(env, traders, trader, liquidator, solvent):
    fund_insurance(env, liquidator, 500)
    for i, t in enumerate(traders):
        env.fund(t, 1000)
        env.trade(t, ETH, 4 if i < 3 else 1)  # the last one stays healthy
    env.fund(trader, 1000)  # collateral, no position
    env.set_price(ETH, 1800)
    liquidatable = [t.address for t in traders if env.engine.health(t.address).liquidatable]
    assert len(liquidatable) == 3
    batch = [traders[3].address, traders[0].address, traders[0].address, ZERO, trader.address, traders[1].address, traders[2].address]
    before = env.token.balanceOf(liquidator.address)
    tx = env.engine.liquidate_many(batch, sender=liquidator)
    count, reward = tx.return_value
    assert count == 3
    logs = tx.decode_logs(env.engine.Liquidation)
    assert [log.account for log in logs] == [traders[0].address, traders[1].address, traders[2].address]
    assert reward == (sum(log.reward for log in logs) // env.scale) * env.scale
    assert env.token.balanceOf(liquidator.address) - before == reward // env.scale
    assert not any(env.engine.health(a).liquidatable for a in liquidatable)
    assert env.engine.liquidatable_accounts(0, 100) == []


def test_liquidate_many__all_healthy__returns_zero_and_moves_nothing(env, traders, liquidator, solvent):
    for t in traders:
        env.fund(t, 1000)
        env.trade(t, ETH, 1)
    tx = env.engine.liquidate_many([t.address for t in traders], sender=liquidator)
    assert tx.return_value == (0, 0)
    assert tx.decode_logs(env.engine.Liquidation) == []
    assert env.token.balanceOf(liquidator.address) == 0


def test_liquidate_many__matches_one_by_one(env, traders, liquidator, solvent):
    """A batch ends in the same state as the same liquidations one at a time (but for the whole-token
    rounding of the single reward transfer, which the fund keeps)."""
    fund_insurance(env, liquidator, 500)
    for i, t in enumerate(traders):
        env.fund(t, 1000 + 50 * i)
        env.trade(t, ETH, 4)
    env.set_price(ETH, 1790)
    expected = {}
    insurance = env.engine.insurance_fund()
    for t in traders:
        coll, positions, _ = model_account(env, t.address)
        e = model.liquidate(coll, positions, model_liq(env), insurance, scale=1)
        insurance = e.insurance_after
        expected[t.address] = e
    tx = env.engine.liquidate_many([t.address for t in traders], sender=liquidator)
    total_reward = sum(e.reward for e in expected.values())
    assert tx.return_value == (len(traders), (total_reward // env.scale) * env.scale)
    for t in traders:
        e = expected[t.address]
        assert env.engine.collateral(t.address) == e.collateral_after
        assert env.engine.position(t.address, ETH).size == e.new_sizes[0]
    assert env.engine.insurance_fund() == insurance + total_reward % env.scale
