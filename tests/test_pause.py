"""The guardian's `paused_open` (DESIGN 7): it blocks opening and increasing positions (a flip opens)
and LP deposits, and nothing else."""

from __future__ import annotations

import ape
import pytest

from helpers import ETH, WAD, assert_solvent

PAUSED = "engine: paused"
DEPOSITS_PAUSED = "pool: deposits paused"
MAX_UINT = 2**256 - 1


@pytest.fixture(scope="module")
def book(env, deployer, guardian, trader, trader2, traders):
    """A separate guardian; `trader` long 2 ETH on 10,000 USDC; `trader2`, traders[0] and traders[1]
    long 4 ETH on 1,000 USDC each (liquidatable below about 1,843); then the guardian pauses."""
    env.config.set_guardian(guardian.address, sender=deployer)
    env.fund(trader, 10_000)
    env.trade(trader, ETH, 2)
    for t in (trader2, traders[0], traders[1]):
        env.fund(t, 1_000)
        env.trade(t, ETH, 4)
    env.config.set_paused_open(True, sender=guardian)
    assert env.engine.paused_open() is True


def size(env, who, market_id=ETH) -> int:
    return env.engine.position(who.address, market_id).size


# --- blocked ---------------------------------------------------------------------------------------


def test_trade__open_long_while_paused__reverts(book, env, traders):
    env.fund(traders[2], 5_000)
    with ape.reverts(PAUSED):
        env.trade(traders[2], ETH, 1)
    assert size(env, traders[2]) == 0
    assert env.engine.position_mask(traders[2].address) == 0


def test_trade__open_short_while_paused__reverts(book, env, traders):
    env.fund(traders[2], 5_000)
    with ape.reverts(PAUSED):
        env.trade(traders[2], ETH, -1)
    assert size(env, traders[2]) == 0


def test_trade__open_in_other_market_while_paused__reverts(book, env, trader):
    with ape.reverts(PAUSED):
        env.trade(trader, 1, "0.01")
    assert size(env, trader, 1) == 0


def test_trade__increase_while_paused__reverts(book, env, trader):
    with ape.reverts(PAUSED):
        env.trade(trader, ETH, "0.5")
    assert size(env, trader) == 2 * WAD


def test_trade__flip_while_paused__reverts(book, env, trader):
    # a flip closes the long and opens a short: it is an opening
    with ape.reverts(PAUSED):
        env.trade(trader, ETH, -3)
    assert size(env, trader) == 2 * WAD


def test_pool_deposit__while_paused__reverts(book, env, lp):
    amount = env.mint(lp, 1_000)
    env.token.approve(env.pool.address, amount, sender=lp)
    shares = env.pool.balanceOf(lp.address)
    with ape.reverts(DEPOSITS_PAUSED):
        env.pool.deposit(amount, sender=lp)
    assert env.pool.balanceOf(lp.address) == shares


def test_pool_mint__while_paused__reverts(book, env, lp):
    amount = env.mint(lp, 1_000)
    env.token.approve(env.pool.address, amount, sender=lp)
    shares = env.pool.balanceOf(lp.address)
    with ape.reverts(DEPOSITS_PAUSED):
        env.pool.mint(10**12, sender=lp)
    assert env.pool.balanceOf(lp.address) == shares


def test_pool_max_deposit_and_mint__while_paused__are_zero(book, env, lp, guardian):
    assert env.pool.maxDeposit(lp.address) == 0
    assert env.pool.maxMint(lp.address) == 0
    env.config.set_paused_open(False, sender=guardian)
    assert env.pool.maxDeposit(lp.address) == MAX_UINT
    assert env.pool.maxMint(lp.address) == MAX_UINT


# --- still open ----------------------------------------------------------------------------------------


def test_deposit__while_paused__credits_collateral(book, env, trader, solvent):
    before = env.engine.collateral(trader.address)
    amount = env.fund(trader, 2_500)
    assert env.engine.collateral(trader.address) == before + amount * env.scale
    assert amount == 2_500 * 10**6


def test_fund_insurance__while_paused__adds_to_fund(book, env, deployer, solvent):
    before = env.engine.insurance_fund()
    amount = env.mint(deployer, 300)
    env.token.approve(env.engine.address, amount, sender=deployer)
    env.engine.fund_insurance(amount, sender=deployer)
    assert env.engine.insurance_fund() == before + 300 * WAD


def test_trade__reduce_while_paused__works(book, env, trader, solvent):
    tx = env.trade(trader, ETH, -1)
    assert size(env, trader) == WAD
    [log] = tx.decode_logs(env.engine.Trade)
    assert (log.size_delta, log.new_size) == (-WAD, WAD)
    assert env.engine.market(ETH).oi_long == 13 * WAD  # 2 + 3 * 4 - 1


def test_trade__close_while_paused__works(book, env, trader, solvent):
    env.trade(trader, ETH, -2)
    assert size(env, trader) == 0
    assert env.engine.position_mask(trader.address) == 0
    assert env.engine.market(ETH).oi_long == 12 * WAD


def test_withdraw__free_collateral_while_paused__works(book, env, trader, solvent):
    coll = env.engine.collateral(trader.address)
    bal = env.token.balanceOf(trader.address)
    env.engine.withdraw(5_000 * 10**6, sender=trader)
    assert env.token.balanceOf(trader.address) == bal + 5_000 * 10**6
    assert env.engine.collateral(trader.address) == coll - 5_000 * WAD
    assert size(env, trader) == 2 * WAD


def test_withdraw__after_close_while_paused__takes_everything(book, env, trader, solvent):
    env.trade(trader, ETH, -2)
    coll = env.engine.collateral(trader.address)
    units = coll // env.scale
    bal = env.token.balanceOf(trader.address)
    env.engine.withdraw(units, sender=trader)
    assert env.engine.collateral(trader.address) == coll - units * env.scale
    assert env.token.balanceOf(trader.address) == bal + units


def test_pool_withdraw__within_reserve_while_paused__works(book, env, lp, solvent):
    assert env.pool.free_assets() > 10_000 * 10**6
    shares = env.pool.balanceOf(lp.address)
    bal = env.token.balanceOf(lp.address)
    burnt = env.pool.previewWithdraw(10_000 * 10**6)
    env.pool.withdraw(10_000 * 10**6, sender=lp)
    assert env.token.balanceOf(lp.address) == bal + 10_000 * 10**6
    assert env.pool.balanceOf(lp.address) == shares - burnt


def test_pool_redeem__within_reserve_while_paused__works(book, env, lp, solvent):
    shares = env.pool.balanceOf(lp.address)
    bal = env.token.balanceOf(lp.address)
    redeem = shares // 10
    assets = env.pool.previewRedeem(redeem)
    assert 0 < assets <= env.pool.free_assets()
    env.pool.redeem(redeem, sender=lp)
    assert env.pool.balanceOf(lp.address) == shares - redeem
    assert env.token.balanceOf(lp.address) == bal + assets


def test_pool_withdraw__beyond_reserve_while_paused__reverts_reserved(book, env, lp):
    free = env.pool.free_assets()
    with ape.reverts("pool: reserved"):
        env.pool.withdraw(free + 1, sender=lp)


def test_liquidate__while_paused__works(book, env, trader2, liquidator, solvent):
    env.set_price(ETH, 1_800)
    assert env.engine.health(trader2.address).liquidatable is True
    bal = env.token.balanceOf(liquidator.address)
    tx = env.engine.liquidate(trader2.address, sender=liquidator)
    [liq] = tx.decode_logs(env.engine.Liquidation)
    assert liq.account == trader2.address
    assert liq.liquidator == liquidator.address
    assert liq.reward > 0
    assert 0 < size(env, trader2) < 4 * WAD
    assert env.token.balanceOf(liquidator.address) == bal + liq.reward // env.scale
    assert env.engine.health(trader2.address).liquidatable is False


def test_liquidate_many__while_paused__works(book, env, trader, trader2, traders, liquidator, solvent):
    env.set_price(ETH, 1_800)
    bal = env.token.balanceOf(liquidator.address)
    # `trader` (2 ETH on 10,000) is healthy and skipped
    tx = env.engine.liquidate_many([trader2.address, trader.address, traders[0].address], sender=liquidator)
    logs = tx.decode_logs(env.engine.Liquidation)
    assert sorted(e.account for e in logs) == sorted([trader2.address, traders[0].address])
    reward = sum(e.reward for e in logs)
    assert env.token.balanceOf(liquidator.address) == bal + reward // env.scale
    assert size(env, trader) == 2 * WAD
    assert 0 < size(env, trader2) < 4 * WAD
    assert 0 < size(env, traders[0]) < 4 * WAD
    assert size(env, traders[1]) == 4 * WAD


def test_health_views__while_paused__work(book, env, trader, trader2, traders):
    env.set_price(ETH, 1_800)
    h = env.engine.health(trader2.address)
    assert h.liquidatable is True
    assert h.equity < h.maintenance_req
    hs = env.engine.healths([trader.address, trader2.address])
    assert [x.liquidatable for x in hs] == [False, True]
    assert hs[1].equity == h.equity
    assert env.engine.n_accounts() == 4
    liquidatable = env.engine.liquidatable_accounts(0, 10)
    assert sorted(liquidatable) == sorted([trader2.address, traders[0].address, traders[1].address])


# --- unpausing ---------------------------------------------------------------------------------------------


def test_unpause__opening_and_lp_deposits_work_again(book, env, guardian, traders, lp):
    env.config.set_paused_open(False, sender=guardian)
    env.fund(traders[2], 5_000)
    env.trade(traders[2], ETH, 1)
    assert size(env, traders[2]) == WAD
    env.trade(traders[2], ETH, 1)
    assert size(env, traders[2]) == 2 * WAD
    shares = env.pool.balanceOf(lp.address)
    amount = env.mint(lp, 1_000)
    env.token.approve(env.pool.address, amount, sender=lp)
    minted = env.pool.previewDeposit(amount)
    env.pool.deposit(amount, sender=lp)
    assert env.pool.balanceOf(lp.address) == shares + minted > shares
    assert_solvent(env)
