"""Adversarial inputs: zero and extreme amounts, sizes and prices, unknown market ids, and every way
an oracle can fail, seen from the engine, the pool and a keeper. A refused call must revert with
a clear reason and change nothing (`ledger` before and after).

| case | expected outcome | test |
| --- | --- | --- |
| deposit / withdraw / fund_insurance 0 | "engine: zero amount" | test_trade: test_deposit__zero__reverts, test_withdraw__zero_or_to_zero_address__reverts; test_trade: test_views__market_price_and_insurance |
| pool deposit / mint / withdraw / redeem 0 | "pool: zero amount" | test_pool: test_zero_amounts__revert_zero_amount |
| withdraw one unit more than collateral | "engine: insufficient collateral" | test_trade: test_withdraw__more_than_collateral__reverts |
| deposit / fund_insurance 2**256-1 | the token's "usdc: insufficient balance", nothing credited | test_max_amounts__engine__revert_and_change_nothing |
| deposit whose WAD value passes int256 | bare revert (overflow), nothing credited | test_max_amounts__engine__revert_and_change_nothing |
| withdraw 2**256-1 or 2**255 | bare revert (overflow), nothing sent | test_max_amounts__engine__revert_and_change_nothing |
| pool deposit 2**256-1 | "math: mul_div overflow" | test_max_amounts__pool__revert_and_change_nothing |
| pool mint 2**256-1 | "usdc: insufficient balance" | test_max_amounts__pool__revert_and_change_nothing |
| pool withdraw / redeem 2**256-1 | "pool: exceeds balance" | test_max_amounts__pool__revert_and_change_nothing |
| pool deposit for the zero address | snekmate's "erc20: mint to the zero address" | test_max_amounts__pool__revert_and_change_nothing |
| trade size 0 | "engine: zero size" | test_trade: test_trade__zero_size__reverts |
| trade size 2**255-1, -2**255 | bare revert (overflow), nothing changes | test_extreme_sizes__revert_and_change_nothing |
| trade size 1e30 / -1e30 base units | "engine: open interest cap" / "engine: fill price" | test_extreme_sizes__revert_and_change_nothing |
| size word 2**256-1 / 2**255 in raw calldata | it is -1 ("engine: position too small") / -2**255 (bare) | test_raw_size_words__decode_as_int256 |
| acceptable price 0 on a buy, 2**256-1 on a sell | "engine: price limit" | test_acceptable_price__extremes__revert_price_limit |
| acceptable price one wei past the fill | "engine: price limit" | test_trade: test_trade__fill_beyond_acceptable_price__reverts |
| open interest above the cap | "engine: open interest cap" | test_trade: test_trade__open_interest_cap__reverts |
| market id n_markets, 16, 2**256-1 (trade, price, market, fill_price) | "engine: unknown market"; position() reads zeros | test_unknown_market_ids__revert_unknown_market |
| liquidate(0x0), empty or oversized batches, paging past the end | "engine: not liquidatable"; (0, 0); bare revert for 201 entries; [] | test_liquidation_inputs__degenerate |
| stale / future / zero / negative / reverting answer, sequencer down, grace period | trading, closing, withdrawing with a position, liquidate, liquidate_many, health, healths, liquidatable_accounts revert with the oracle's reason; latest() answers ok=False; markets on other oracles, deposits and LP withdrawals keep working; a fresh answer unblocks liquidation | test_bad_oracle__engine_paths_revert_with_its_reason |
| the same failures and the pool's reserve | the reserve does not fall, so LPs cannot withdraw what backs open skew | test_bad_oracle__pool_reserve_does_not_fall (FAILS for zero, negative and reverting answers: see its docstring) |
| oracle reasons themselves, latest() never reverting | as in DESIGN 6 | test_oracle.py (all), test_oracle_fallback.py |
"""

from __future__ import annotations

import ape
import pytest
from eth_abi import encode

from adversarial_support import BARE, MAX_UINT, ZERO, derive_config, ledger
from helpers import BTC, ETH, FEED_DECIMALS, WAD, make_env

UNIT = 10**6  # one USDC
GRACE = 3_600
SEQUENCER_UP, SEQUENCER_DOWN = 0, 1


# ZERO AND MAX AMOUNTS #


def test_max_amounts__engine__revert_and_change_nothing(env, trader):
    env.fund(trader, 1_000)
    env.token.approve(env.engine.address, MAX_UINT, sender=trader)
    before = ledger(env, trader)
    with ape.reverts("usdc: insufficient balance"):
        env.engine.deposit(MAX_UINT, sender=trader)
    with ape.reverts("usdc: insufficient balance"):
        env.engine.fund_insurance(MAX_UINT, sender=trader)
    with ape.reverts(BARE):
        env.engine.withdraw(MAX_UINT, sender=trader)
    with ape.reverts(BARE):
        env.engine.withdraw(2**255, sender=trader)
    assert ledger(env, trader) == before

    # a balance whose WAD value does not fit an int256: the deposit reverts, the tokens stay
    huge = (2**255) // env.scale + 1
    env.token.mint(trader.address, huge, sender=trader)
    before = ledger(env, trader)
    with ape.reverts(BARE):
        env.engine.deposit(huge, sender=trader)
    assert ledger(env, trader) == before


def test_max_amounts__pool__revert_and_change_nothing(env, trader, lp):
    env.mint(trader, 1_000)
    env.token.approve(env.pool.address, MAX_UINT, sender=trader)
    before = ledger(env, trader, lp)
    with ape.reverts("math: mul_div overflow"):
        env.pool.deposit(MAX_UINT, sender=trader)
    with ape.reverts("usdc: insufficient balance"):
        env.pool.mint(MAX_UINT, sender=trader)
    with ape.reverts("pool: exceeds balance"):
        env.pool.withdraw(MAX_UINT, sender=lp)
    with ape.reverts("pool: exceeds balance"):
        env.pool.redeem(MAX_UINT, sender=lp)
    with ape.reverts("erc20: mint to the zero address"):
        env.pool.deposit(UNIT, ZERO, sender=trader)
    assert ledger(env, trader, lp) == before


@pytest.mark.parametrize(
    "size, limit, reason",
    [
        (2**255 - 1, MAX_UINT, BARE),  # (2 * skew + size) * price overflows
        (-(2**255), 0, BARE),  # |size| overflows
        (10**30, MAX_UINT, "engine: open interest cap"),  # 10^12 ETH: priced, then capped
        (-(10**30), 0, "engine: fill price"),  # a sell past the skew scale prices below zero
    ],
    ids=["int256_max", "int256_min", "1e30", "-1e30"],
)
def test_extreme_sizes__revert_and_change_nothing(env, trader, size, limit, reason):
    env.fund(trader, 1_000_000)
    before = ledger(env, trader), env.engine.market(ETH)
    with ape.reverts(reason):
        env.engine.trade(ETH, size, limit, sender=trader)
    assert (ledger(env, trader), env.engine.market(ETH)) == before


@pytest.mark.parametrize("word, reason", [(MAX_UINT, "engine: position too small"), (2**255, BARE)])
def test_raw_size_words__decode_as_int256(env, trader, word, reason):
    """A size word of 2**256-1 or 2**255 sent as raw calldata is the two's complement int256 (-1
    and -2**255): no reading makes it a huge buy."""
    env.fund(trader, 1_000)
    selector = env.engine.trade.encode_input(ETH, 1, 0)[:4]
    data = selector + encode(["uint256", "uint256", "uint256"], [ETH, word, 0])
    before = ledger(env, trader)
    with ape.reverts(reason):
        trader.transfer(env.engine.address, 0, data=data)
    assert ledger(env, trader) == before


def test_acceptable_price__extremes__revert_price_limit(env, trader):
    env.fund(trader, 1_000)
    env.trade(trader, ETH, 1)
    before = ledger(env, trader)
    with ape.reverts("engine: price limit"):
        env.engine.trade(ETH, WAD, 0, sender=trader)  # a buy at no more than 0
    with ape.reverts("engine: price limit"):
        env.engine.trade(ETH, -WAD, MAX_UINT, sender=trader)  # a sell at no less than 2**256-1
    assert ledger(env, trader) == before


# UNKNOWN MARKETS #


def test_unknown_market_ids__revert_unknown_market(env, trader):
    env.fund(trader, 1_000)
    before = ledger(env, trader)
    for market_id in (env.engine.n_markets(), 16, MAX_UINT):
        with ape.reverts("engine: unknown market"):
            env.engine.trade(market_id, WAD, MAX_UINT, sender=trader)
        with ape.reverts("engine: unknown market"):
            env.engine.price(market_id)
        with ape.reverts("engine: unknown market"):
            env.engine.market(market_id)
        with ape.reverts("engine: unknown market"):
            env.engine.fill_price(market_id, WAD)
        assert tuple(env.engine.position(trader.address, market_id)) == (0, 0, 0, 0, False)
    assert ledger(env, trader) == before


def test_liquidation_inputs__degenerate(env, trader, liquidator):
    env.fund(trader, 1_000)
    env.trade(trader, ETH, 1)
    before = ledger(env, trader, liquidator)
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(ZERO, sender=liquidator)
    assert env.engine.liquidate_many([], sender=liquidator).return_value == (0, 0)
    with ape.reverts(BARE):  # the batch bound is 200
        env.engine.liquidate_many([trader.address] * 201, sender=liquidator)
    assert env.engine.liquidatable_accounts(env.engine.n_accounts(), 1000) == []
    with ape.reverts("engine: index out of range"):
        env.engine.account_at(MAX_UINT)
    assert ledger(env, trader, liquidator) == before


# ORACLE FAILURES #


@pytest.fixture(scope="module")
def l2(project, chain, deployer, lp):
    """The default deployment, but ETH-USD's oracle also checks a sequencer feed (up for ten grace
    periods): BTC-USD shows what keeps working while ETH-USD's oracle fails."""
    seq = project.MockAggregator.deploy(0, SEQUENCER_UP, "sequencer", sender=deployer)
    seq.set_round(SEQUENCER_UP, chain.pending_timestamp - 10 * GRACE, sender=deployer)
    return make_env(
        project,
        chain,
        deployer,
        lp,
        derive_config(lambda raw: raw["markets"][ETH].update(sequencer_feed=seq.address, grace_period=GRACE)),
    )


@pytest.fixture(scope="module")
def book(l2, trader, trader2, traders):
    """trader2 long 4 ETH on 1,000 and traders[0] long 0.3 BTC on 1,600, both liquidatable after the
    moves below; trader funded with no position."""
    l2.fund(trader, 10_000)
    l2.fund(trader2, 1_000)
    l2.trade(trader2, ETH, 4)
    l2.fund(traders[0], 1_600)
    l2.trade(traders[0], BTC, "0.3")
    l2.set_price(ETH, 1_800)
    l2.set_price(BTC, 56_000)
    assert l2.engine.health(trader2.address).liquidatable and l2.engine.health(traders[0].address).liquidatable
    return l2


def _sequencer(project, env):
    return project.MockAggregator.at(env.oracles[ETH].sequencer_feed())


# name -> (the reason price() reverts with, what latest() keeps of the feed's answer)
FAILURES = {
    "stale": ("oracle: stale", "price"),
    "future": ("oracle: stale", "price"),
    "zero": ("oracle: invalid answer", "time"),
    "negative": ("oracle: invalid answer", "time"),
    "reverting": ("aggregator: broken", "nothing"),
    "sequencer_down": ("oracle: sequencer down", "price"),
    "grace_period": ("oracle: grace period", "price"),
}


def _break(project, chain, env, name) -> str:
    """Breaks ETH-USD's oracle the named way (at a feed price of 1,800); returns the reason."""
    feed, seq, tx = env.feeds[ETH], _sequencer(project, env), {"sender": env.deployer}
    now, answer = chain.pending_timestamp, 1_800 * 10**FEED_DECIMALS
    if name == "stale":
        feed.set_round(answer, now - env.oracles[ETH].heartbeat() - 1, **tx)
    elif name == "future":
        feed.set_round(answer, now + 600, **tx)
    elif name == "zero":
        feed.set_answer(0, **tx)
    elif name == "negative":
        feed.set_answer(-1, **tx)
    elif name == "reverting":
        feed.set_broken(True, **tx)
    elif name == "sequencer_down":
        seq.set_answer(SEQUENCER_DOWN, **tx)
    else:
        seq.set_round(SEQUENCER_UP, now, **tx)  # back up just now: inside the grace period
    return FAILURES[name][0]


def _repair(project, chain, env):
    env.feeds[ETH].set_broken(False, sender=env.deployer)
    env.set_price(ETH, 1_800)
    _sequencer(project, env).set_round(SEQUENCER_UP, chain.pending_timestamp - 10 * GRACE, sender=env.deployer)


@pytest.mark.parametrize("failure", list(FAILURES))
def test_bad_oracle__engine_paths_revert_with_its_reason(
    project, chain, l2, book, failure, trader, trader2, traders, liquidator, lp
):
    e = l2.engine
    reason = _break(project, chain, l2, failure)
    kept = FAILURES[failure][1]

    # everything that needs the ETH price reverts with the oracle's reason and moves nothing
    before = ledger(l2, trader, trader2, traders[0], liquidator)
    with ape.reverts(reason):
        e.price(ETH)
    with ape.reverts(reason):
        e.fill_price(ETH, WAD)
    with ape.reverts(reason):
        l2.trade(trader, ETH, 1)  # opening
    with ape.reverts(reason):
        l2.trade(trader2, ETH, -4)  # closing too: there is no price to close at
    with ape.reverts(reason):
        e.withdraw(1, sender=trader2)  # withdrawing needs the margin check
    with ape.reverts(reason):
        e.liquidate(trader2.address, sender=liquidator)
    with ape.reverts(reason):  # one such account spoils a whole batch
        e.liquidate_many([traders[0].address, trader2.address], sender=liquidator)
    assert ledger(l2, trader, trader2, traders[0], liquidator) == before

    # what a keeper sees: the views that price trader2 revert, latest() answers without reverting
    with ape.reverts(reason):
        e.health(trader2.address)
    with ape.reverts(reason):
        e.healths([traders[0].address, trader2.address])
    with ape.reverts(reason):
        e.liquidatable_accounts(0, e.n_accounts())
    price, updated_at, ok = l2.oracles[ETH].latest()
    assert ok is False
    if kept == "nothing":
        assert (price, updated_at) == (0, 0)
    else:
        _, answer, _, feed_updated_at, _ = l2.feeds[ETH].latestRoundData()
        assert updated_at == feed_updated_at
        assert price == (answer * 10 ** (18 - FEED_DECIMALS) if kept == "price" else 0)

    # what does not need the ETH price keeps working
    l2.fund(trader2, 100)
    l2.trade(trader, BTC, "0.01")
    assert e.healths([traders[0].address])[0].liquidatable
    assert e.liquidate_many([traders[0].address], sender=liquidator).return_value[0] == 1
    free = l2.pool.maxWithdraw(lp.address)
    assert free > 0
    l2.pool.withdraw(free // 2, sender=lp)

    # a good answer again: the liquidation goes through
    _repair(project, chain, l2)
    e.liquidate(trader2.address, sender=liquidator)
    assert not e.health(trader2.address).liquidatable


@pytest.mark.parametrize("failure", list(FAILURES))
def test_bad_oracle__pool_reserve_does_not_fall(project, chain, l2, book, failure, lp):
    """The reserve (reserve_factor * |skew| * price, held back from LP withdrawals) is priced with
    latest(), so that a stale price still counts. But latest() answers price 0 for a zero, negative
    or reverting feed, and the market's skew then drops out of the reserve: while ETH-USD's feed is
    broken, LPs can withdraw the part of the pool that backs the ETH traders' open profits.
    FAILS for "zero", "negative" and "reverting" (reported to the lead); passes for the others."""
    reserve = l2.engine.reserve_requirement()
    free = l2.pool.maxWithdraw(lp.address)
    assert reserve > 0
    _break(project, chain, l2, failure)
    assert l2.engine.reserve_requirement() >= reserve
    assert l2.pool.maxWithdraw(lp.address) <= free
