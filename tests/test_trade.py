"""Accounts and cross trading: deposits, withdrawals, trades and every revert reason on their paths,
checked against the independent model in tests/model.py."""

import ape
import pytest

import model
from helpers import BTC, ETH, WAD, assert_solvent, model_params

ETH_PRICE = 2000 * WAD
ETH_SKEW_SCALE = 1_000_000 * WAD
ETH_FEE = 5 * 10**14  # 0.05%


def _fill(env, market_id, delta):
    m = env.engine.market(market_id)
    skew = m.oi_long - m.oi_short
    return model.fill_price(env.engine.price(market_id), skew, delta, m.params.skew_scale)


# DEPOSIT / WITHDRAW #


def test_deposit__credits_collateral_in_wad_and_logs(env, trader, solvent):
    amount = env.mint(trader, 1234.5)
    env.token.approve(env.engine.address, amount, sender=trader)
    tx = env.engine.deposit(amount, sender=trader)
    env.touched.add(trader.address)
    assert env.engine.collateral(trader.address) == amount * env.scale
    [log] = tx.decode_logs(env.engine.Deposit)
    assert (log.account, log.sender, log.amount) == (trader.address, trader.address, amount)


def test_deposit__for_another_account__credits_that_account(env, trader, trader2, solvent):
    amount = env.mint(trader, 100)
    env.token.approve(env.engine.address, amount, sender=trader)
    env.engine.deposit(amount, trader2.address, sender=trader)
    env.touched.update({trader.address, trader2.address})
    assert env.engine.collateral(trader2.address) == amount * env.scale
    assert env.engine.collateral(trader.address) == 0


def test_deposit__zero__reverts(env, trader):
    with ape.reverts("engine: zero amount"):
        env.engine.deposit(0, sender=trader)


def test_deposit__to_zero_address__reverts(env, trader):
    amount = env.mint(trader, 1)
    env.token.approve(env.engine.address, amount, sender=trader)
    with ape.reverts("engine: zero address"):
        env.engine.deposit(amount, "0x0000000000000000000000000000000000000000", sender=trader)


def test_withdraw__free_collateral__sends_tokens(env, trader, solvent):
    env.fund(trader, 500)
    tx = env.engine.withdraw(env.units(200), sender=trader)
    assert env.token.balanceOf(trader.address) == env.units(200)
    assert env.engine.collateral(trader.address) == env.units(300) * env.scale
    [log] = tx.decode_logs(env.engine.Withdraw)
    assert log.amount == env.units(200) and log.receiver == trader.address


def test_withdraw__to_receiver__sends_there(env, trader, trader2, solvent):
    env.fund(trader, 500)
    env.engine.withdraw(env.units(500), trader2.address, sender=trader)
    assert env.token.balanceOf(trader2.address) == env.units(500)
    assert env.engine.collateral(trader.address) == 0


def test_withdraw__more_than_collateral__reverts(env, trader):
    env.fund(trader, 100)
    with ape.reverts("engine: insufficient collateral"):
        env.engine.withdraw(env.units(100) + 1, sender=trader)


def test_withdraw__zero_or_to_zero_address__reverts(env, trader):
    env.fund(trader, 100)
    with ape.reverts("engine: zero amount"):
        env.engine.withdraw(0, sender=trader)
    with ape.reverts("engine: zero address"):
        env.engine.withdraw(1, "0x0000000000000000000000000000000000000000", sender=trader)


def test_withdraw__below_initial_margin__reverts_and_exact_free_amount_passes(env, trader, solvent):
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    h = env.engine.health(trader.address)
    free_units = (h.equity - h.initial_req) // env.scale  # whole tokens of free equity
    with ape.reverts("engine: insufficient margin"):
        env.engine.withdraw(free_units + 1, sender=trader)
    env.engine.withdraw(free_units, sender=trader)
    h = env.engine.health(trader.address)
    assert h.equity >= h.initial_req


# TRADE #


def test_trade__open_long__fills_at_skewed_price_and_pays_fee_to_pool(env, trader, solvent):
    env.fund(trader, 1000)
    delta = 3 * WAD
    expected_fill = _fill(env, ETH, delta)
    assert expected_fill == env.engine.fill_price(ETH, delta)
    pool_before = env.pool.totalAssets()
    tx = env.trade(trader, ETH, 3)
    fee = model.trade_fee(delta, expected_fill, ETH_FEE)
    [log] = tx.decode_logs(env.engine.Trade)
    assert log.fill_price == expected_fill > ETH_PRICE  # a buy into zero skew pays above oracle
    assert log.fee == fee and log.realized_pnl == 0 and log.new_size == delta
    pos = env.engine.position(trader.address, ETH)
    assert pos.size == delta and pos.cost == model.ceil_div(delta * expected_fill, WAD)
    assert env.engine.collateral(trader.address) == env.units(1000) * env.scale - fee
    m = env.engine.market(ETH)
    assert (m.oi_long, m.oi_short) == (delta, 0)
    # the pool receives the fee in whole tokens; the sub-token rest waits in pool_owed
    assert env.pool.totalAssets() - pool_before == (fee + 0) // env.scale
    assert env.engine.pool_owed() == fee % env.scale


def test_trade__short_into_long_skew__fills_below_oracle_but_above_long_fill(env, trader, trader2, solvent):
    env.fund(trader, 10_000)
    env.fund(trader2, 10_000)
    env.trade(trader, ETH, 10)
    fill = _fill(env, ETH, -4 * WAD)
    tx = env.trade(trader2, ETH, -4)
    assert tx.decode_logs(env.engine.Trade)[0].fill_price == fill
    assert fill > ETH_PRICE  # the skew is still long after the sell, so the seller gets a premium


def test_trade__close_with_profit__paid_from_pool(env, trader, solvent):
    env.fund(trader, 1000)
    env.trade(trader, ETH, 2)
    env.set_price(ETH, 2200)
    pos = env.engine.position(trader.address, ETH)
    coll = env.engine.collateral(trader.address)
    fill = _fill(env, ETH, -pos.size)
    _, _, realized = model.apply_trade(pos.size, pos.cost, -pos.size, fill)
    fee = model.trade_fee(-pos.size, fill, ETH_FEE)
    tx = env.trade(trader, ETH, -2)
    log = tx.decode_logs(env.engine.Trade)[0]
    assert log.realized_pnl == realized > 0
    assert env.engine.collateral(trader.address) == coll + realized - fee
    assert env.engine.position(trader.address, ETH).size == 0
    assert env.engine.position_mask(trader.address) == 0


def test_trade__partial_close__removes_proportional_cost(env, trader, solvent):
    env.fund(trader, 5000)
    env.trade(trader, ETH, -5)
    env.set_price(ETH, 1900)
    pos = env.engine.position(trader.address, ETH)
    delta = 2 * WAD
    fill = _fill(env, ETH, delta)
    new_size, new_cost, realized = model.apply_trade(pos.size, pos.cost, delta, fill)
    tx = env.trade(trader, ETH, 2)
    assert tx.decode_logs(env.engine.Trade)[0].realized_pnl == realized
    pos = env.engine.position(trader.address, ETH)
    assert (pos.size, pos.cost) == (new_size, new_cost)


def test_trade__flip__closes_then_opens_rest(env, trader, solvent):
    env.fund(trader, 5000)
    env.trade(trader, ETH, 2)
    pos = env.engine.position(trader.address, ETH)
    delta = -5 * WAD
    fill = _fill(env, ETH, delta)
    new_size, new_cost, realized = model.apply_trade(pos.size, pos.cost, delta, fill)
    env.trade(trader, ETH, -5)
    pos = env.engine.position(trader.address, ETH)
    assert (pos.size, pos.cost) == (new_size, new_cost) and new_size == -3 * WAD
    m = env.engine.market(ETH)
    assert (m.oi_long, m.oi_short) == (0, 3 * WAD)


def test_trade__two_markets__cross_margin_sums_requirements(env, trader, solvent):
    env.fund(trader, 3000)
    env.trade(trader, ETH, 5)
    env.trade(trader, BTC, -0.2)
    h = env.engine.health(trader.address)
    positions = []
    for mid in (ETH, BTC):
        p = env.engine.position(trader.address, mid)
        mp = env.engine.market(mid).params
        positions.append(
            model.Pos(
                p.size,
                p.cost,
                env.engine.price(mid),
                model_params(env, mid),
            )
        )
    expected = model.account_health(env.engine.collateral(trader.address), positions)
    assert (h.equity, h.initial_req, h.maintenance_req, h.liquidatable) == (
        expected.equity,
        expected.initial_req,
        expected.maintenance_req,
        expected.liquidatable,
    )
    assert env.engine.position_mask(trader.address) == 0b11


def test_trade__unknown_market__reverts(env, trader):
    env.fund(trader, 100)
    with ape.reverts("engine: unknown market"):
        env.engine.trade(2, WAD, 2**256 - 1, sender=trader)


def test_trade__zero_size__reverts(env, trader):
    with ape.reverts("engine: zero size"):
        env.engine.trade(ETH, 0, 0, sender=trader)


@pytest.mark.parametrize("delta", [WAD, -WAD])
def test_trade__fill_beyond_acceptable_price__reverts(env, trader, delta):
    env.fund(trader, 1000)
    fill = _fill(env, ETH, delta)
    limit = fill - 1 if delta > 0 else fill + 1
    with ape.reverts("engine: price limit"):
        env.engine.trade(ETH, delta, limit, sender=trader)
    env.engine.trade(ETH, delta, fill, sender=trader)  # exactly the fill passes
    env.touched.add(trader.address)


def test_trade__above_initial_margin__reverts(env, trader):
    env.fund(trader, 100)
    with ape.reverts("engine: insufficient margin"):
        env.trade(trader, ETH, 1)  # 2000 notional needs 200 at 10% imf


def test_trade__open_interest_cap__reverts(env, deployer, trader):
    mp = env.engine.market(ETH).params
    env.config.set_market_params(ETH, (*mp[:5], 3 * WAD, 2 * WAD, *mp[7:]), sender=deployer)
    env.fund(trader, 10_000)
    with ape.reverts("engine: open interest cap"):
        env.trade(trader, ETH, 3.5)
    with ape.reverts("engine: open interest cap"):
        env.trade(trader, ETH, -2.5)
    env.trade(trader, ETH, 3)  # at the cap
    assert env.engine.market(ETH).oi_long == 3 * WAD


def test_trade__skew_beyond_pool_usage__reverts(env, deployer, trader):
    env.config.set_exposure(WAD // 1000, 0, sender=deployer)  # skew notional <= 0.1% of 1M = 1000 USD
    env.fund(trader, 10_000)
    with ape.reverts("engine: pool exposure"):
        env.trade(trader, ETH, 0.6)
    env.trade(trader, ETH, 0.4)


def test_trade__dust_position__reverts_on_open_and_on_partial_close(env, trader):
    env.fund(trader, 1000)
    with ape.reverts("engine: position too small"):
        env.trade(trader, ETH, 0.02)  # 40 USD < 50 USD
    env.trade(trader, ETH, 0.1)
    with ape.reverts("engine: position too small"):
        env.trade(trader, ETH, -0.09)
    env.trade(trader, ETH, -0.1)  # a full close is always allowed
    assert env.engine.position(trader.address, ETH).size == 0


def test_trade__reduce_while_underwater__reverts_but_liquidation_works(env, trader, liquidator, solvent):
    env.fund(trader, 320)
    env.trade(trader, ETH, 1.5)
    env.set_price(ETH, 1700)  # loss ~ 450 > 320 collateral
    assert env.engine.health(trader.address).equity < 0
    with ape.reverts("engine: account underwater"):
        env.trade(trader, ETH, -1.5)
    with ape.reverts("engine: account underwater"):
        env.trade(trader, ETH, -0.5)
    env.engine.liquidate(trader.address, sender=liquidator)
    assert env.engine.position_mask(trader.address) == 0


def test_trade__reduce_while_liquidatable_but_solvent__is_allowed(env, trader, solvent):
    env.fund(trader, 1000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1800)
    assert env.engine.health(trader.address).liquidatable
    env.trade(trader, ETH, -4)  # self-rescue
    assert env.engine.position_mask(trader.address) == 0
    assert env.engine.collateral(trader.address) > 0


# ACCOUNT LIST AND VIEWS #


def test_account_list__tracks_accounts_holding_positions(env, trader, trader2, solvent):
    n0 = env.engine.n_accounts()
    env.fund(trader, 1000)
    env.fund(trader2, 1000)
    tx = env.trade(trader, ETH, 1)
    assert tx.decode_logs(env.engine.AccountListed)[0].listed
    env.trade(trader2, BTC, 0.01)
    env.trade(trader, BTC, 0.01)  # a second market does not list twice
    assert env.engine.n_accounts() == n0 + 2
    listed = {env.engine.account_at(i) for i in range(env.engine.n_accounts())}
    assert {trader.address, trader2.address} <= listed
    env.trade(trader, ETH, -1)
    assert env.engine.n_accounts() == n0 + 2  # still holds BTC
    env.trade(trader, BTC, -0.01)
    assert env.engine.n_accounts() == n0 + 1
    assert env.engine.account_at(n0) == trader2.address
    with ape.reverts("engine: index out of range"):
        env.engine.account_at(n0 + 1)


def test_views__market_price_and_insurance(env, liquidator, solvent):
    m = env.engine.market(ETH)
    assert m.oracle == env.oracles[ETH].address and env.config.brackets(ETH)[0].mmf == 5 * 10**16
    assert env.engine.price(ETH) == ETH_PRICE
    with ape.reverts("engine: unknown market"):
        env.engine.market(5)
    with ape.reverts("engine: unknown market"):
        env.engine.price(5)
    amount = env.mint(liquidator, 250)
    env.token.approve(env.engine.address, amount, sender=liquidator)
    tx = env.engine.fund_insurance(amount, sender=liquidator)
    assert env.engine.insurance_fund() == amount * env.scale
    assert tx.decode_logs(env.engine.InsuranceFunded)[0].amount == amount
    with ape.reverts("engine: zero amount"):
        env.engine.fund_insurance(0, sender=liquidator)


def test_views__healths_and_liquidatable_accounts_paging(env, traders, solvent):
    for i, t in enumerate(traders):
        env.fund(t, 1000)
        env.trade(t, ETH, 4 if i % 2 == 0 else 1)
    env.set_price(ETH, 1800)
    hs = env.engine.healths([t.address for t in traders])
    singles = [env.engine.health(t.address) for t in traders]
    assert [tuple(h) for h in hs] == [tuple(h) for h in singles]
    risky = {t.address for t, h in zip(traders, hs) if h.liquidatable}
    assert risky == {traders[0].address, traders[2].address}
    n = env.engine.n_accounts()
    found = set()
    for start in range(0, n, 3):
        found |= set(env.engine.liquidatable_accounts(start, 3))
    assert found == risky
    assert env.engine.liquidatable_accounts(n, 10) == []
    with ape.reverts("engine: limit too large"):
        env.engine.liquidatable_accounts(0, 1001)


def test_fill_price__trade_beyond_the_skew_scale__reverts_with_reason(env):
    """The fill price of a sell larger than the skew scale would be negative: the view says so (OI
    caps no larger than the skew scale keep a real trade from getting there)."""
    with ape.reverts("engine: fill price"):
        env.engine.fill_price(ETH, -3 * ETH_SKEW_SCALE)
