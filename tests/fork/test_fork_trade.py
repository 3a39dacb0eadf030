"""Real USDC in and out of the engine and the pool, and an ETH-USD trade at the real feed's price moved
by the skew the trade creates (DESIGN 4: fill = P * (1 + (skew_before + skew_after) / (2 * skew_scale)))."""

from decimal import Decimal

import ape

import model
from forktools import FIAT_TOKEN_ABI, FeedControl, contract, deal
from helpers import ETH, WAD


def test_deposit__real_usdc__credited_and_withdrawn(env, trader, solvent):
    usdc = contract(env.token.address, FIAT_TOKEN_ABI)
    deal(usdc.address, trader, 2_500 * 10**6)
    engine_before = usdc.balanceOf(env.engine.address)
    usdc.approve(env.engine.address, 2_500 * 10**6, sender=trader)
    tx = env.engine.deposit(2_500 * 10**6, sender=trader)
    env.touched.add(trader.address)
    [log] = tx.decode_logs(env.engine.Deposit)
    assert log.amount == 2_500 * 10**6
    assert env.engine.collateral(trader.address) == 2_500 * WAD
    assert usdc.balanceOf(trader.address) == 0
    assert usdc.balanceOf(env.engine.address) == engine_before + 2_500 * 10**6

    env.engine.withdraw(1_000 * 10**6, sender=trader)
    assert usdc.balanceOf(trader.address) == 1_000 * 10**6
    assert env.engine.collateral(trader.address) == 1_500 * WAD


def test_pool__lp_deposit_of_real_usdc__mints_shares_and_holds_the_assets(env, lp):
    usdc = env.token
    assert env.pool.totalAssets() == usdc.balanceOf(env.pool.address) == 1_000_000 * 10**6
    assert env.pool.balanceOf(lp.address) > 0
    assert env.pool.convertToAssets(env.pool.balanceOf(lp.address)) == 1_000_000 * 10**6


def test_trade_eth__fills_at_the_feed_price_moved_by_skew(env, trader, trader2, solvent):
    feed = FeedControl.read(env.record["markets"][ETH]["feed"])
    p = feed.wad()
    assert env.engine.price(ETH) == p  # the oracle adapter passes the feed's answer through, in WAD
    env.fund(trader, 20_000)
    env.fund(trader2, 20_000)

    # a long into a flat market pays above the feed's price
    m = env.engine.market(ETH)
    skew_scale = m.params.skew_scale
    assert m.oi_long == m.oi_short == 0
    long_size = 3 * WAD
    expected = model.fill_price(p, 0, long_size, skew_scale)
    assert env.engine.fill_price(ETH, long_size) == expected
    tx = env.trade(trader, ETH, 3, limit=expected)
    [log] = tx.decode_logs(env.engine.Trade)
    assert log.fill_price == expected > p
    assert log.size_delta == log.new_size == long_size
    traded = -(-long_size * expected // WAD)  # notional, rounded up
    assert log.fee == -(-traded * 5 * 10**14 // WAD)  # taker fee 0.05%, rounded up
    pos = env.engine.position(trader.address, ETH)
    assert pos.size == long_size and pos.cost == -(-long_size * expected // WAD)

    # a short against the long skew sells at the skew's premium: average skew (3 + 1) / 2 > (0 + 3) / 2
    short_size = -2 * WAD
    expected_short = model.fill_price(p, long_size, short_size, skew_scale)
    assert expected_short > expected > p
    tx = env.trade(trader2, ETH, Decimal(-2), limit=expected_short)
    [log] = tx.decode_logs(env.engine.Trade)
    assert log.fill_price == expected_short
    assert env.engine.market(ETH).oi_long == long_size and env.engine.market(ETH).oi_short == 2 * WAD


def test_trade_eth__price_limit_is_checked_against_the_real_fill(env, trader):
    p = env.engine.price(ETH)
    env.fund(trader, 10_000)
    expected = model.fill_price(p, 0, WAD, env.engine.market(ETH).params.skew_scale)
    with ape.reverts("engine: price limit"):
        env.trade(trader, ETH, 1, limit=expected - 1)


def test_trade_eth__round_trip_returns_usdc_less_fees(env, trader, solvent):
    usdc = env.token
    env.fund(trader, 5_000)
    env.trade(trader, ETH, 1)
    env.trade(trader, ETH, -1)
    assert env.engine.position(trader.address, ETH).size == 0
    left = env.engine.collateral(trader.address)
    assert 4_990 * WAD < left < 5_000 * WAD  # two taker fees and the skew premium, nothing else
    env.engine.withdraw(left // 10**12, sender=trader)
    assert usdc.balanceOf(trader.address) == left // 10**12
