"""Collateral tokens: 6, 8 and 18 decimals, a USDT-like token without return values, a USDC-like
blacklist, and a fee-on-transfer token. Solvency is checked after every step."""

from __future__ import annotations

import ape
import pytest

from helpers import ETH, WAD, Env, assert_solvent, base_config, make_env

BLACKLISTED = "Blacklistable: account is blacklisted"


def fills(e, tx):
    [log] = tx.decode_logs(e.engine.Trade)
    return log


def liquidate(e, account, liquidator):
    """Liquidates `account`; checks that the reward reached the liquidator in whole tokens."""
    bal = e.token.balanceOf(liquidator.address)
    tx = e.engine.liquidate(account.address, sender=liquidator)
    [liq] = tx.decode_logs(e.engine.Liquidation)
    assert liq.account == account.address and liq.liquidator == liquidator.address
    assert liq.reward >= e.config.liquidation_params().min_keeper_reward
    assert e.token.balanceOf(liquidator.address) == bal + liq.reward // e.scale
    return liq


# --- 6, 8 and 18 decimals -------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[6, 8, 18], ids=lambda d: f"{d}dec")
def denv(request, project, chain, deployer, lp):
    e = make_env(project, chain, deployer, lp, base_config("erc20", request.param))
    assert e.decimals == request.param
    assert e.engine.scale() == 10 ** (18 - request.param)
    return e


def test_flow__deposit_open_close_with_profit_and_loss(denv, trader):
    e = denv
    amount = e.fund(trader, "10000.5")
    assert amount == 100_005 * 10 ** (e.decimals - 1)
    assert e.engine.collateral(trader.address) == 10_000_5 * WAD // 10
    assert_solvent(e)

    open_ = fills(e, e.trade(trader, ETH, 5))
    assert open_.new_size == 5 * WAD
    assert_solvent(e)

    e.set_price(ETH, 2_100)
    before = e.engine.collateral(trader.address)
    close = fills(e, e.trade(trader, ETH, -5))
    assert close.new_size == 0
    assert 495 * WAD < close.realized_pnl < 501 * WAD  # 5 * (2,100 - 2,000) less the skew premium
    assert e.engine.collateral(trader.address) == before + close.realized_pnl - close.fee
    assert_solvent(e)

    fills(e, e.trade(trader, ETH, -5))  # short at 2,100
    assert_solvent(e)
    e.set_price(ETH, "2150.75")
    before = e.engine.collateral(trader.address)
    close = fills(e, e.trade(trader, ETH, 5))
    assert -260 * WAD < close.realized_pnl < -250 * WAD
    assert e.engine.collateral(trader.address) == before + close.realized_pnl - close.fee
    assert e.engine.position_mask(trader.address) == 0
    assert_solvent(e)

    coll = e.engine.collateral(trader.address)
    units = coll // e.scale
    e.engine.withdraw(units, sender=trader)
    assert e.token.balanceOf(trader.address) == units
    assert e.engine.collateral(trader.address) == coll - units * e.scale < e.scale
    assert_solvent(e)


def test_flow__withdraw_with_open_position(denv, trader):
    e = denv
    e.fund(trader, 5_000)
    e.trade(trader, ETH, 10)  # 20,000 notional: 2,000 initial requirement
    assert_solvent(e)
    with ape.reverts("engine: insufficient margin"):
        e.engine.withdraw(e.units(3_000), sender=trader)
    e.engine.withdraw(e.units("2000.25"), sender=trader)
    assert e.token.balanceOf(trader.address) == e.units("2000.25")
    h = e.engine.health(trader.address)
    assert h.equity >= h.initial_req
    assert_solvent(e)


def test_flow__liquidation(denv, trader2, traders, liquidator):
    e = denv
    e.fund(trader2, 1_000)
    e.trade(trader2, ETH, 4)
    e.fund(traders[0], 300)
    e.trade(traders[0], ETH, "1.2")
    assert_solvent(e)
    e.set_price(ETH, 1_800)
    liq = liquidate(e, trader2, liquidator)
    assert not liq.full
    assert 0 < e.engine.position(trader2.address, ETH).size < 4 * WAD
    assert_solvent(e)
    # a deep fall: full close, bad debt for traders[0]
    e.set_price(ETH, 1_500)
    liq = liquidate(e, traders[0], liquidator)
    assert liq.full
    assert e.engine.collateral(traders[0].address) == 0
    assert_solvent(e)


# --- USDT-like token (no return values) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def usdt(project, chain, deployer, lp):
    return make_env(project, chain, deployer, lp, base_config("usdt", 6))


def test_usdt__deposit_trade_withdraw_liquidate_and_pool(usdt, trader, trader2, liquidator, lp):
    e = usdt
    assert e.pool.totalAssets() == 1_000_000 * 10**6  # make_env seeded the pool through deposit()
    e.fund(trader, 10_000)
    assert e.engine.collateral(trader.address) == 10_000 * WAD
    e.trade(trader, ETH, 5)
    e.set_price(ETH, 2_100)
    close = fills(e, e.trade(trader, ETH, -5))
    assert close.realized_pnl > 490 * WAD
    assert_solvent(e)
    coll = e.engine.collateral(trader.address)
    e.engine.withdraw(coll // e.scale, sender=trader)
    assert e.token.balanceOf(trader.address) == coll // e.scale > 10_400 * 10**6
    assert_solvent(e)

    e.fund(trader2, 1_000)
    e.trade(trader2, ETH, 4)
    e.set_price(ETH, 1_900)
    liquidate(e, trader2, liquidator)
    assert_solvent(e)

    amount = e.mint(lp, 5_000)
    e.token.approve(e.pool.address, amount, sender=lp)
    shares = e.pool.balanceOf(lp.address)
    minted = e.pool.previewDeposit(amount)
    e.pool.deposit(amount, sender=lp)
    assert e.pool.balanceOf(lp.address) == shares + minted
    bal = e.token.balanceOf(lp.address)
    e.pool.withdraw(12_345 * 10**6, sender=lp)
    assert e.token.balanceOf(lp.address) == bal + 12_345 * 10**6
    assert_solvent(e)


# --- USDC-like blacklist ---------------------------------------------------------------------------------


def test_blacklisted_trader__is_liquidated_and_withdraws_to_another_receiver(env, trader, trader2, liquidator):
    env.fund(trader, 1_000)
    env.trade(trader, ETH, 4)
    env.token.blacklist(trader.address, sender=trader2)
    assert env.token.is_blacklisted(trader.address) is True

    env.set_price(ETH, 1_800)
    liq = liquidate(env, trader, liquidator)
    assert liq.reward > 0
    left = env.engine.position(trader.address, ETH).size
    assert 0 < left < 4 * WAD
    assert_solvent(env)

    # closing moves no tokens, so a blacklisted account can still close
    env.engine.trade(ETH, -left, 0, sender=trader)
    assert env.engine.position_mask(trader.address) == 0
    coll = env.engine.collateral(trader.address)
    units = coll // env.scale
    assert units > 0
    with ape.reverts(BLACKLISTED):
        env.engine.withdraw(units, sender=trader)
    bal = env.token.balanceOf(trader2.address)
    tx = env.engine.withdraw(units, trader2.address, sender=trader)
    assert env.token.balanceOf(trader2.address) == bal + units
    assert env.engine.collateral(trader.address) == coll - units * env.scale
    [w] = tx.decode_logs(env.engine.Withdraw)
    assert (w.account, w.receiver, w.amount) == (trader.address, trader2.address, units)
    assert_solvent(env)


# --- fee-on-transfer token --------------------------------------------------------------------------------


def engine_over(project, env, deployer, token, name, symbol):
    """Engine and pool over a token deploy() does not know, built as scripts/_deploy.py builds them;
    its one market reads the default deployment's ETH oracle."""
    cfg = base_config()
    pool = project.RiskPool.deploy(token.address, cfg.pool.decimals_offset, name, symbol, sender=deployer)
    config = project.RiskConfig.deploy(deployer.address, cfg.risk_delay, sender=deployer)
    engine = project.MarginEngine.deploy(token.address, pool.address, config.address, sender=deployer)
    config.set_engine(
        engine.address,
        cfg.liquidation.params(),
        int(cfg.pool.max_pool_usage * WAD),
        int(cfg.pool.reserve_factor * WAD),
        sender=deployer,
    )
    pool.set_engine(engine.address, sender=deployer)
    config.add_market(env.oracles[ETH].address, cfg.markets[ETH].params(), cfg.markets[ETH].brackets_param(), sender=deployer)
    return engine, config, pool


@pytest.fixture(scope="module")
def fee_env(project, env, deployer, lp) -> Env:
    """Engine and pool over MockFeeToken(6), built as scripts/_deploy.py builds them (deploy() only
    knows the three mock kinds); its one market reads the default deployment's ETH oracle."""
    token = project.MockFeeToken.deploy(6, sender=deployer)
    engine, config, pool = engine_over(project, env, deployer, token, "Ballast LP FEE", "bFEE")
    e = Env(
        engine=engine,
        config=config,
        pool=pool,
        token=token,
        feeds=[env.feeds[ETH]],
        oracles=[env.oracles[ETH]],
        deployer=deployer,
        decimals=6,
        record={},
    )
    e.pool_debt_ok = True  # the pool's payments lose 1% on the way: a recorded claim remains
    # LP deposits of a fee token are refused (test below): the pool's assets arrive as a mint
    token.mint(pool.address, 1_000_000 * 10**6, sender=deployer)
    assert pool.totalAssets() == 1_000_000 * 10**6
    return e


def test_fee_token__deposit__credits_only_what_arrived(fee_env, trader):
    e = fee_env
    amount = e.mint(trader, 1_000)
    e.token.approve(e.engine.address, amount, sender=trader)
    tx = e.engine.deposit(amount, sender=trader)
    e.touched.add(trader.address)
    [d] = tx.decode_logs(e.engine.Deposit)
    assert d.amount == 990 * 10**6
    assert e.engine.collateral(trader.address) == 990 * WAD
    assert e.token.balanceOf(e.engine.address) == 990 * 10**6
    assert_solvent(e)

    amount = e.mint(trader, 100)
    e.token.approve(e.engine.address, amount, sender=trader)
    e.engine.fund_insurance(amount, sender=trader)
    assert e.engine.insurance_fund() == 99 * WAD
    assert_solvent(e)


def test_fee_token__trade_at_a_loss_and_withdraw__stays_solvent(fee_env, trader):
    e = fee_env
    e.fund(trader, 10_000)
    assert e.engine.collateral(trader.address) == 9_900 * WAD
    e.trade(trader, ETH, 5)
    assert_solvent(e)
    e.set_price(ETH, 1_950)
    e.trade(trader, ETH, -5)
    assert_solvent(e)
    coll = e.engine.collateral(trader.address)
    units = coll // e.scale
    e.engine.withdraw(units, sender=trader)
    assert e.engine.collateral(trader.address) == coll - units * e.scale
    assert e.token.balanceOf(trader.address) == units - units // 100  # the receiver bears the fee
    assert_solvent(e)


def test_fee_token__trader_profit_paid_by_pool__engine_stays_solvent(fee_env, trader):
    e = fee_env
    e.fund(trader, 10_000)
    e.trade(trader, ETH, 5)
    e.set_price(ETH, 2_200)
    tx = e.trade(trader, ETH, -5)  # the pool pays about 1,000 tokens of profit; 1% is burnt on the way
    # the engine credits what arrived and keeps the rest as a recorded claim on the pool
    [short] = tx.decode_logs(e.engine.PoolShortfall)
    assert short.amount == -e.engine.pool_owed() > 0
    [paid] = tx.decode_logs(e.pool.Paid)
    burnt = paid.amount // 100  # what the token burnt on the way
    assert abs(short.amount - burnt * e.scale) < e.scale  # the claim is the burnt part, to a token unit
    assert_solvent(e, pool_debt_ok=True)


def test_fee_token__pool_deposit_and_mint__refused(fee_env, trader):
    """Shares priced on the amount asked for would make older LPs pay the transfer fee: the pool
    refuses a token that delivers less than it was asked to move, and nothing changes."""
    e = fee_env
    ta, supply = e.pool.totalAssets(), e.pool.totalSupply()
    amount = e.mint(trader, 10_000)
    e.token.approve(e.pool.address, amount, sender=trader)
    with ape.reverts("pool: transfer fee not supported"):
        e.pool.deposit(amount, sender=trader)
    with ape.reverts("pool: transfer fee not supported"):
        e.pool.mint(e.pool.previewDeposit(amount // 2), sender=trader)
    assert (e.pool.totalAssets(), e.pool.totalSupply()) == (ta, supply)
    assert e.token.balanceOf(trader.address) == amount


# A TOKEN THAT ANSWERS FALSE #


@pytest.fixture(scope="module")
def false_env(project, env, deployer) -> Env:
    """Engine and pool over MockFalseToken, whose transfers can return False and move nothing."""
    token = project.MockFalseToken.deploy(sender=deployer)
    engine, config, pool = engine_over(project, env, deployer, token, "Ballast LP FUSD", "bFUSD")
    token.mint(pool.address, 1_000_000 * 10**6, sender=deployer)
    return Env(engine=engine, config=config, pool=pool, token=token, feeds=[env.feeds[ETH]], oracles=[env.oracles[ETH]], deployer=deployer, decimals=6, record={})


def test_false_token__deposit_and_insurance__revert_and_credit_nothing(false_env, trader):
    e = false_env
    amount = e.mint(trader, 1_000)
    e.token.approve(e.engine.address, amount, sender=trader)
    e.token.set_refuse(True, sender=e.deployer)
    with ape.reverts("engine: transfer failed"):
        e.engine.deposit(amount, sender=trader)
    with ape.reverts("engine: transfer failed"):
        e.engine.fund_insurance(amount, sender=trader)
    assert e.engine.collateral(trader.address) == 0 and e.engine.insurance_fund() == 0


def test_false_token__withdraw__reverts_and_keeps_collateral(false_env, trader):
    e = false_env
    e.fund(trader, 1_000)
    e.token.set_refuse(True, sender=e.deployer)
    with ape.reverts("engine: transfer failed"):
        e.engine.withdraw(e.units(500), sender=trader)
    assert e.engine.collateral(trader.address) == e.units(1_000) * e.scale


def test_false_token__pool_payment__reverts_the_close(false_env, trader):
    e = false_env
    e.fund(trader, 10_000)
    e.trade(trader, ETH, 5)
    e.set_price(ETH, 2_200)
    e.token.set_refuse(True, sender=e.deployer)
    with ape.reverts("pool: transfer failed"):
        e.trade(trader, ETH, -5)
    assert e.engine.position(trader.address, ETH).size == 5 * WAD
    e.token.set_refuse(False, sender=e.deployer)
    e.trade(trader, ETH, -5)  # works again once the token does
    assert_solvent(e)
