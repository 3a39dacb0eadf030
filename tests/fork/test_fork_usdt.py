"""USDT as collateral in a second deployment (config/mainnet.yaml with the collateral switched to real
USDT): its transfer, transferFrom and approve return nothing, and every token path still works."""

from decimal import Decimal

import pytest

from forktools import USDT_ABI, make_fork_env, usd
from helpers import ETH, WAD, assert_solvent


@pytest.fixture(scope="module")
def usdt_env(project, chain, deployer, lp, chain_config, spec):
    raw = chain_config.model_dump(mode="python")
    raw["collateral"] = spec.usdt
    raw["pool"].update(name="Ballast LP USDT", symbol="bUSDT")
    cfg = type(chain_config).model_validate(raw)
    return make_fork_env(project, chain, deployer, lp, cfg, USDT_ABI)


def test_usdt_deployment__binds_real_usdt(usdt_env, env, spec):
    assert usdt_env.record["contracts"]["collateral"] == spec.usdt
    assert usdt_env.engine.collateral_token() == spec.usdt == usdt_env.pool.asset()
    assert usdt_env.record["collateral_decimals"] == 6 and usdt_env.engine.scale() == 10**12
    assert usdt_env.pool.symbol() == "bUSDT"
    assert usdt_env.engine.address != env.engine.address  # a second deployment beside the USDC one
    assert usdt_env.pool.totalAssets() == usdt_env.token.balanceOf(usdt_env.pool.address) == 1_000_000 * 10**6


def test_usdt__deposit_trade_close_withdraw(usdt_env, trader):
    e = usdt_env
    e.fund(trader, 5_000)  # approve + transferFrom, neither returns a value
    assert e.engine.collateral(trader.address) == 5_000 * WAD
    e.trade(trader, ETH, 1)
    e.trade(trader, ETH, -1)
    left = e.engine.collateral(trader.address)
    assert 4_990 * WAD < left < 5_000 * WAD
    e.engine.withdraw(left // 10**12, sender=trader)  # transfer, no return value
    assert e.token.balanceOf(trader.address) == left // 10**12
    assert_solvent(e)


def test_usdt__crash_liquidation_pays_the_reward_in_usdt(usdt_env, trader, liquidator):
    e = usdt_env
    p0 = e.engine.price(ETH)
    e.fund(trader, 2_000)
    size = (Decimal(12_000 * WAD) / Decimal(p0)).quantize(Decimal("0.0001"))
    e.trade(trader, ETH, size)
    e.set_price(ETH, usd(p0) * Decimal("0.85"))
    before = e.token.balanceOf(liquidator.address)
    tx = e.engine.liquidate_many([trader.address], sender=liquidator)
    [log] = tx.decode_logs(e.engine.Liquidation)
    assert log.reward > 0
    assert e.token.balanceOf(liquidator.address) - before == log.reward // 10**12
    assert not e.engine.health(trader.address).liquidatable
    assert_solvent(e)


def test_usdt__lp_withdraws_real_usdt(usdt_env, lp):
    e = usdt_env
    before = e.token.balanceOf(lp.address)
    shares = e.pool.balanceOf(lp.address)
    e.pool.withdraw(250_000 * 10**6, sender=lp)  # the pool pays with a transfer that returns nothing
    assert e.token.balanceOf(lp.address) == before + 250_000 * 10**6
    assert e.pool.balanceOf(lp.address) < shares
    assert e.pool.totalAssets() == e.token.balanceOf(e.pool.address) == 750_000 * 10**6
