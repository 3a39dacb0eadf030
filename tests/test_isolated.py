"""Isolated margin in the engine (DESIGN 3-5): a position's margin is its own. Its health, its
liquidation and its bad debt are checked wei for wei against the independent model; its loss never
reaches the account's cross collateral or its other positions, and a cross liquidation never
touches it."""

import ape

import adv_model
import model
from helpers import BTC, ETH, WAD, assert_solvent
from model import ceil_div

CROSS = 2**256 - 1
ISO = 16


def open_iso(env, who, size, margin_usd, counterparty=None):
    """Opens an isolated position; a counterparty first takes the opposite cross side, so that the
    skew is zero afterwards and no funding accrues."""
    if counterparty is not None:
        env.fund(counterparty, 1_000_000)
        env.trade(counterparty, ETH, -size)
    return env.trade_isolated(who, ETH, size, margin_usd)


def liq_params(env):
    q = env.config.liquidation_params()
    return model.LiqParams(q.liq_target, q.keeper_share, q.min_keeper_reward, q.max_keeper_reward)


def flat_market(env, market_id, vol_mmf):
    """Model parameters of a position inside the first bracket: one flat fraction, floored at
    the volatility term."""
    p = env.engine.market(market_id).params
    mmf = max(adv_model.brackets(env, market_id)[0][1], vol_mmf)
    return model.MarketParams(mmf, p.imf, p.im_multiplier, p.liq_penalty, p.taker_fee, p.skew_scale, p.min_position_notional)


def poke_and_freeze(env, chain, who, *market_ids):
    """Records every market at one block and makes the next transaction share its timestamp, so
    that views read now are exactly what that transaction sees."""
    chain.pending_timestamp = chain.blocks.head.timestamp + 1  # a new price needs time to count
    for mid in market_ids:
        env.engine.poke(mid, sender=who)
    chain.pending_timestamp = chain.blocks.head.timestamp


def iso_fields(env, who, mid):
    p = env.engine.position(who, mid)
    return (p.size, p.cost, p.funding_entry, p.margin, p.isolated)


def fund_insurance(env, who, usd):
    amount = env.mint(who, usd)
    env.token.approve(env.engine.address, amount, sender=who)
    env.engine.fund_insurance(amount, sender=who)


def test_open__margin_from_cross_and_own_health(adv, trader):
    env = adv
    env.fund(trader, 10_000)
    price = env.engine.price(ETH)
    params = env.engine.market(ETH).params
    tx = env.trade_isolated(trader, ETH, 5, 2_000)

    fill = model.fill_price(price, 0, 5 * WAD, params.skew_scale)
    fee = model.trade_fee(5 * WAD, fill, params.taker_fee)
    [log] = tx.decode_logs(env.engine.Trade)
    assert (log.fill_price, log.fee, log.isolated, log.new_size) == (fill, fee, True, 5 * WAD)
    assert env.engine.collateral(trader) == 8_000 * WAD
    pos = env.engine.position(trader, ETH)
    assert pos.isolated and pos.size == 5 * WAD and pos.cost == ceil_div(5 * WAD * fill, WAD)
    assert pos.margin == 2_000 * WAD - fee
    assert env.engine.position_mask(trader) == (1 << ETH) | (1 << (ISO + ETH))

    h = env.engine.isolated_health(trader, ETH)
    equity, mm, im = adv_model.isolated_health(env, trader, ETH)
    assert (h.equity, h.maintenance_req, h.initial_req) == (equity, mm, im)
    assert h.liquidatable is (equity < mm) is False
    # the cross account sees none of it
    cross = env.engine.health(trader)
    assert (cross.equity, cross.maintenance_req, cross.initial_req, cross.liquidatable) == (8_000 * WAD, 0, 0, False)


def test_margin_rules(adv, trader):
    env = adv
    env.fund(trader, 10_000)
    env.trade_isolated(trader, ETH, 5, 1_100)
    _, _, im = adv_model.isolated_health(env, trader, ETH)
    equity, _, _ = adv_model.isolated_health(env, trader, ETH)
    free = equity - im  # what may come out, at this block's figures
    assert free > 0
    with ape.reverts("engine: insufficient margin"):
        env.engine.remove_isolated_margin(ETH, free // env.scale + 1, sender=trader)
    coll = env.engine.collateral(trader)

    def move(fn, amount, delta):
        # each move settles the position's funding so far into its margin
        before = env.engine.position(trader, ETH)
        fn(ETH, amount, sender=trader)
        after = env.engine.position(trader, ETH)
        owed = adv_model.funding_owed(before.size, after.funding_entry, before.funding_entry)
        assert after.margin == before.margin + delta - owed

    move(env.engine.remove_isolated_margin, 10 * 10**6, -10 * WAD)
    assert env.engine.collateral(trader) == coll + 10 * WAD
    move(env.engine.add_isolated_margin, 25 * 10**6, 25 * WAD)
    assert env.engine.collateral(trader) == coll - 15 * WAD
    # one market, one mode
    with ape.reverts("engine: margin mode mismatch"):
        env.trade(trader, ETH, 1)
    env.trade(trader, BTC, "0.1")
    with ape.reverts("engine: margin mode mismatch"):
        env.trade_isolated(trader, BTC, "0.1", 100)
    with ape.reverts("engine: margin mode mismatch"):
        env.engine.add_isolated_margin(BTC, 10**6, sender=trader)
    # no position, nothing to move margin into
    env.trade(trader, BTC, "-0.1")
    with ape.reverts("engine: no position"):
        env.engine.add_isolated_margin(BTC, 10**6, sender=trader)
    with ape.reverts("engine: no position"):
        env.engine.remove_isolated_margin(BTC, 10**6, sender=trader)
    # the margin comes from free cross collateral only
    with ape.reverts("engine: insufficient collateral"):
        env.engine.add_isolated_margin(ETH, env.engine.collateral(trader) // env.scale + 1, sender=trader)


def test_close__margin_left_returns_to_cross(adv, trader):
    env = adv
    env.fund(trader, 10_000)
    env.trade_isolated(trader, ETH, 5, 2_000)
    env.set_price(ETH, 2_100)
    coll = env.engine.collateral(trader)
    margin = env.engine.position(trader, ETH).margin
    tx = env.trade_isolated(trader, ETH, -5)
    [log] = tx.decode_logs(env.engine.Trade)
    assert log.new_size == 0 and log.realized_pnl > 0
    assert env.engine.collateral(trader) == coll + margin + log.realized_pnl - log.funding - log.fee
    pos = env.engine.position(trader, ETH)
    assert (pos.size, pos.cost, pos.margin, pos.isolated) == (0, 0, 0, False)
    assert env.engine.position_mask(trader) == 0


def test_paused_open__blocks_opening_only(adv, trader, deployer):
    env = adv
    env.fund(trader, 10_000)
    env.trade_isolated(trader, ETH, 5, 2_000)
    env.config.set_paused_open(True, sender=deployer)
    with ape.reverts("engine: paused"):
        env.trade_isolated(trader, BTC, "0.1", 500)
    with ape.reverts("engine: paused"):
        env.trade_isolated(trader, ETH, 1)
    margin = env.engine.position(trader, ETH).margin
    env.engine.add_isolated_margin(ETH, 100 * 10**6, sender=trader)
    assert env.engine.position(trader, ETH).margin > margin
    env.trade_isolated(trader, ETH, -2)
    assert env.engine.position(trader, ETH).size == 3 * WAD
    env.trade_isolated(trader, ETH, -3)
    assert env.engine.position_mask(trader) == 0


def test_gap__bad_debt_to_insurance_then_pool_never_cross(adv, chain, trader, trader2, liquidator):
    env = adv
    env.fund(trader, 20_000)
    env.trade(trader, BTC, "0.2")  # another position, cross
    open_iso(env, trader, 10, 2_100, counterparty=trader2)
    fund_insurance(env, liquidator, 500)
    coll = env.engine.collateral(trader)
    btc = iso_fields(env, trader, BTC)
    env.set_price(ETH, 1_700)  # a gap: the loss is larger than the margin
    poke_and_freeze(env, chain, liquidator, ETH, BTC)

    pos = env.engine.position(trader, ETH)
    vol_mmf = env.engine.market_state(ETH).vol_mmf
    price = env.engine.price(ETH)
    insurance = env.engine.insurance_fund()
    expect = model.liquidate(pos.margin, [model.Pos(pos.size, pos.cost, price, flat_market(env, ETH, vol_mmf))], liq_params(env), insurance, scale=env.scale)
    assert expect.full and expect.bad_debt > 0
    assert 0 < expect.bad_debt_insurance_paid < expect.bad_debt  # both pay a part
    pool_before = env.token.balanceOf(env.pool.address) * env.scale + env.engine.pool_owed()

    tx = env.engine.liquidate_isolated(trader, ETH, sender=liquidator)

    [bd] = tx.decode_logs(env.engine.BadDebt)
    assert (bd.amount, bd.insurance_paid, bd.pool_written_off) == (expect.bad_debt, expect.bad_debt_insurance_paid, expect.bad_debt_written_off)
    [liq] = tx.decode_logs(env.engine.Liquidation)
    assert (liq.isolated_market, liq.full, liq.penalty, liq.penalty_paid, liq.reward) == (ETH, True, expect.penalty, 0, expect.reward)
    assert env.engine.insurance_fund() == expect.insurance_after
    pool_after = env.token.balanceOf(env.pool.address) * env.scale + env.engine.pool_owed()
    assert pool_after - pool_before == expect.pool_delta
    # the account's cross side is untouched, to the wei
    assert env.engine.collateral(trader) == coll
    assert iso_fields(env, trader, BTC) == btc
    pos = env.engine.position(trader, ETH)
    assert (pos.size, pos.cost, pos.margin, pos.isolated) == (0, 0, 0, False)
    assert env.engine.position_mask(trader) == 1 << BTC
    assert_solvent(env)


def test_partial_isolated_liquidation__to_target(adv, chain, trader, trader2, liquidator):
    env = adv
    env.fund(trader, 10_000)
    open_iso(env, trader, 10, 2_100, counterparty=trader2)
    env.set_price(ETH, 1_900)
    poke_and_freeze(env, chain, liquidator, ETH)
    h = env.engine.isolated_health(trader, ETH)
    assert h.liquidatable and h.equity > 0
    assert (h.equity, h.maintenance_req, h.initial_req) == adv_model.isolated_health(env, trader, ETH)

    pos = env.engine.position(trader, ETH)
    vol_mmf = env.engine.market_state(ETH).vol_mmf
    price = env.engine.price(ETH)
    coll = env.engine.collateral(trader)
    expect = model.liquidate(pos.margin, [model.Pos(pos.size, pos.cost, price, flat_market(env, ETH, vol_mmf))], liq_params(env), env.engine.insurance_fund(), scale=env.scale)
    assert not expect.full and 0 < expect.fraction < WAD

    tx = env.engine.liquidate_isolated(trader, ETH, sender=liquidator)

    [liq] = tx.decode_logs(env.engine.Liquidation)
    assert (liq.isolated_market, liq.fraction, liq.full, liq.closed_notional, liq.penalty, liq.penalty_paid, liq.reward) == (
        ETH, expect.fraction, False, expect.closed_notional, expect.penalty, expect.paid, expect.reward)
    after = env.engine.position(trader, ETH)
    assert (after.size, after.cost, after.margin, after.isolated) == (expect.new_sizes[0], expect.new_costs[0], expect.collateral_after, True)
    assert env.engine.insurance_fund() == expect.insurance_after
    assert env.engine.collateral(trader) == coll
    h = env.engine.isolated_health(trader, ETH)
    target = env.config.liquidation_params().liq_target
    assert h.equity * WAD >= target * h.maintenance_req and not h.liquidatable
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate_isolated(trader, ETH, sender=liquidator)


def test_cross_liquidation__never_touches_isolated_margin(adv, chain, trader, liquidator):
    env = adv
    env.fund(trader, 4_000)
    env.trade_isolated(trader, ETH, 5, 1_500)
    env.trade(trader, BTC, "0.3")  # 18,000 of notional on 2,500 of cross collateral
    iso = iso_fields(env, trader, ETH)
    env.set_price(BTC, 52_000)
    env.set_price(ETH, 2_000)  # fresh, unchanged
    assert env.engine.health(trader).liquidatable
    assert not env.engine.isolated_health(trader, ETH).liquidatable
    tx = env.engine.liquidate(trader, sender=liquidator)
    [liq] = tx.decode_logs(env.engine.Liquidation)
    assert liq.isolated_market == CROSS
    assert [p.market_id for p in tx.decode_logs(env.engine.PositionLiquidated)] == [BTC]
    assert iso_fields(env, trader, ETH) == iso
    assert env.engine.position_mask(trader) >> (ISO + ETH) & 1 == 1


def test_isolated_only_problem__found_and_batched_with_cross(adv, chain, trader, trader2, traders, liquidator):
    env = adv
    a, b, c = trader, trader2, traders[0]
    env.fund(a, 10_000)
    env.trade_isolated(a, ETH, 10, 2_100)  # healthy cross (no cross position), thin isolated
    env.fund(b, 2_600)
    env.trade(b, BTC, "0.4")  # thin cross
    env.fund(c, 50_000)
    env.trade(c, BTC, "0.1")  # healthy
    n = env.engine.n_accounts()
    assert env.engine.liquidatable_accounts(0, n) == []
    env.set_price(ETH, 1_900)
    env.set_price(BTC, 55_000)
    chain.mine(timestamp=chain.blocks.head.timestamp + 2)
    ha = env.engine.health(a)
    assert ha.liquidatable and ha.maintenance_req == 0 and ha.equity == env.engine.collateral(a)
    assert env.engine.isolated_health(a, ETH).liquidatable
    assert env.engine.health(b).liquidatable and not env.engine.health(c).liquidatable
    assert set(env.engine.liquidatable_accounts(0, n)) == {a.address, b.address}
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(a, sender=liquidator)  # nothing cross to liquidate

    tx = env.engine.liquidate_many([a, b, c], sender=liquidator)
    assert tx.return_value[0] == 2
    kinds = {(log.account, log.isolated_market) for log in tx.decode_logs(env.engine.Liquidation)}
    assert kinds == {(a.address, ETH), (b.address, CROSS)}
    assert env.engine.liquidatable_accounts(0, env.engine.n_accounts()) == []
