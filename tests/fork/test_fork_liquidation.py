"""A crash on the ETH/USD feed liquidated with engine.liquidate_many from a plain test account (the keeper
subprocess version is tests/fork/test_fork_keeper.py), and a USDC-blacklisted trader liquidated all
the same: liquidation never moves the liquidated account's tokens (DESIGN 5.5)."""

from decimal import Decimal

import ape

from forktools import FIAT_TOKEN_ABI, blacklist, contract, unblacklist, usd
from helpers import ETH, WAD, assert_solvent


def _open_leveraged_long(env, who, collateral_usd, leverage):
    """A long of `leverage` x collateral at the feed's price; returns its size (18 decimals)."""
    env.fund(who, collateral_usd)
    p = env.engine.price(ETH)
    size = Decimal(collateral_usd * leverage * WAD) / Decimal(p)
    env.trade(who, ETH, size.quantize(Decimal("0.0001")))
    return env.engine.position(who.address, ETH).size


def test_crash__liquidate_many__liquidates_the_underwater_and_skips_the_healthy(env, trader, trader2, liquidator, solvent):
    p0 = env.engine.price(ETH)
    risky = _open_leveraged_long(env, trader, 2_000, 6)
    _open_leveraged_long(env, trader2, 20_000, 1)
    assert not env.engine.health(trader.address).liquidatable

    # a 15% crash on the real feed (its decimals kept): the 6x long is below maintenance
    crashed = env.set_price(ETH, usd(p0) * Decimal("0.85"))
    assert env.engine.price(ETH) == crashed
    assert env.feeds[ETH].decimals() == env.oracles[ETH].feed_decimals() == env.controls[ETH].decimals
    assert env.engine.health(trader.address).liquidatable
    assert not env.engine.health(trader2.address).liquidatable
    assert trader.address in env.engine.liquidatable_accounts(0, 100)

    reward_before = env.token.balanceOf(liquidator.address)
    tx = env.engine.liquidate_many([trader.address, trader2.address], sender=liquidator)
    logs = tx.decode_logs(env.engine.Liquidation)
    assert [log.account for log in logs] == [trader.address]
    [log] = logs
    assert log.liquidator == liquidator.address and log.closed_notional > 0 and log.reward > 0
    # the reward is paid to the caller in real USDC (whole tokens)
    assert env.token.balanceOf(liquidator.address) - reward_before == log.reward // 10**12
    after = env.engine.health(trader.address)
    assert not after.liquidatable
    assert abs(env.engine.position(trader.address, ETH).size) < abs(risky)
    assert env.engine.position(trader2.address, ETH).size > 0  # untouched
    # a second pass finds nobody
    tx = env.engine.liquidate_many([trader.address, trader2.address], sender=liquidator)
    assert tx.decode_logs(env.engine.Liquidation) == []


def test_crash__liquidate_healthy_account__reverts(env, trader, liquidator):
    _open_leveraged_long(env, trader, 2_000, 2)
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(trader.address, sender=liquidator)


def test_blacklisted_trader__still_liquidated(env, spec, trader, liquidator, solvent):
    usdc = contract(spec.usdc, FIAT_TOKEN_ABI)
    p0 = env.engine.price(ETH)
    _open_leveraged_long(env, trader, 2_000, 6)
    deal_left = usdc.balanceOf(trader.address)

    # Circle freezes the trader: done as the blacklister the token itself names
    blacklister = usdc.blacklister()
    assert blacklister != trader.address
    with ape.reverts("Blacklistable: caller is not the blacklister"):
        usdc.blacklist(trader.address, sender=liquidator)
    blacklist(spec.usdc, trader)
    assert usdc.isBlacklisted(trader.address)
    with ape.reverts("Blacklistable: account is blacklisted"):
        env.engine.withdraw(10**6, sender=trader)  # the engine cannot pay a frozen account

    env.set_price(ETH, usd(p0) * Decimal("0.87"))  # 13% down: below maintenance, equity left
    assert env.engine.health(trader.address).liquidatable
    collateral_before = env.engine.collateral(trader.address)
    tx = env.engine.liquidate_many([trader.address], sender=liquidator)
    [log] = tx.decode_logs(env.engine.Liquidation)
    assert log.account == trader.address and log.reward > 0
    assert not env.engine.health(trader.address).liquidatable
    # the penalty came out of the collateral kept inside the engine; no token moved to or from the trader
    assert env.engine.collateral(trader.address) < collateral_before
    assert usdc.balanceOf(trader.address) == deal_left
    assert usdc.isBlacklisted(trader.address)
    assert_solvent(env)

    # once Circle lifts the freeze, what is left is the trader's to withdraw
    unblacklist(spec.usdc, trader)
    assert not usdc.isBlacklisted(trader.address)
    rest = env.engine.position(trader.address, ETH).size
    if rest != 0:  # a partial liquidation leaves a position: closing is always allowed
        env.engine.trade(ETH, -rest, 0, sender=trader)
    left = env.engine.collateral(trader.address)
    assert left > 0
    env.engine.withdraw(left // 10**12, sender=trader)
    assert usdc.balanceOf(trader.address) == deal_left + left // 10**12
