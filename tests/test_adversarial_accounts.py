"""Adversarial accounts: dust positions, a top-up raced against a liquidation in the same block, the
largest account the engine allows and the gas of its liquidation, liquidating yourself, and
round trips and sandwiches at an unchanged oracle price.

| case | expected outcome | test |
| --- | --- | --- |
| open below min_position_notional; partial close to dust | "engine: position too small"; a full close passes | test_trade: test_trade__dust_position__reverts_on_open_and_on_partial_close |
| open, partial close and flip at exactly the floor and one wei under | the floor passes, one wei under reverts "engine: position too small" | test_dust__floor_is_exact_for_open_partial_close_and_flip |
| a position worn under the floor by the price | reducing or adding a wei reverts "engine: position too small"; a full close passes | test_dust__position_worn_under_the_floor__only_closes_fully |
| liquidation remainder under the floor | closed fully | test_liquidation: test_liquidate__remainder_would_be_dust__closes_fully |
| liquidation of two markets where one remainder would be dust | that market closes fully, the other partially, as the model says | test_dust__liquidation_closes_the_dust_market_fully_and_the_other_partially |
| top-up then liquidation in one block, top-up enough | liquidate reverts "engine: not liquidatable"; liquidate_many skips it for little gas | test_top_up_in_the_same_block__enough__liquidation_refused_and_batch_skips_cheaply |
| top-up then liquidation in one block, top-up too small | liquidated against the new equity, exactly as the model predicts; smaller fraction than without it | test_top_up_in_the_same_block__too_small__liquidated_against_the_new_equity |
| an account in all 16 markets with large positions | liquidated well within 30M gas; the gas is linear in positions | test_sixteen_market_account__liquidation_fits_a_block |
| liquidator == account (partial) | pays less than it had | test_liquidation: test_liquidate__self_liquidation_never_pays |
| liquidator == account or a second address, partial or full, solvent | the pair ends poorer than closing itself | test_self_liquidation__solvent__pays_less_than_closing |
| the same, from the deposit, down to an underwater account | the pair ends with less than it deposited | test_self_liquidation__round_trip_from_the_deposit__never_pays |
| the same when equity is below the keeper reward | the pair must not end richer than closing | test_self_liquidation__equity_below_the_reward__pays_more_than_closing (FAILS: see its docstring) |
| open and close at an unchanged price (with and against a skew, in pieces, through a flip) | realized PnL is zero to a few wei, never positive; the account pays both fees | test_round_trip__unchanged_price__never_profits |
| a sandwich around another trader's trade at an unchanged price | a victim whose limit is its quote is not filled; with no limit the attacker gains P * a * v / skew_scale less two fees: a loss within the default pool's exposure cap | test_sandwich__at_the_exposure_cap__does_not_pay_and_a_quoted_limit_refuses_it |
| the same with a 20M pool | pays the attacker against a victim with no limit | test_sandwich__with_a_large_pool__pays_against_a_loose_limit_only |
"""

from __future__ import annotations

import ape
import pytest

import model
from adversarial_support import MAX_UINT, derive_config
from helpers import BTC, ETH, WAD, make_env
from test_liquidation import fund_insurance, liquidate_and_compare, model_account, model_liq

BLOCK_GAS = 30_000_000
TOO_SMALL = "engine: position too small"


def fill_logs(env, *txs):
    return [log for tx in txs for log in tx.decode_logs(env.engine.Trade)]


# DUST #


def test_dust__floor_is_exact_for_open_partial_close_and_flip(env, trader):
    e = env.engine
    env.fund(trader, 1_000)
    floor = e.market(ETH).params.min_position_notional * WAD // e.price(ETH)  # 0.025 ETH at 2,000
    assert floor * e.price(ETH) == 50 * WAD * WAD  # exact: the floor is a whole number of wei
    with ape.reverts(TOO_SMALL):
        e.trade(ETH, floor - 1, MAX_UINT, sender=trader)
    env.trade(trader, ETH, "0.1")
    with ape.reverts(TOO_SMALL):  # leaves floor - 1
        e.trade(ETH, -(WAD // 10 - floor + 1), 0, sender=trader)
    e.trade(ETH, -(WAD // 10 - floor), 0, sender=trader)  # leaves the floor
    assert e.position(trader.address, ETH).size == floor
    with ape.reverts(TOO_SMALL):  # a flip to a short of floor - 1
        e.trade(ETH, -(2 * floor - 1), 0, sender=trader)
    e.trade(ETH, -2 * floor, 0, sender=trader)  # a flip to a short of the floor
    assert e.position(trader.address, ETH).size == -floor
    e.trade(ETH, floor, MAX_UINT, sender=trader)
    assert e.position_mask(trader.address) == 0


def test_dust__position_worn_under_the_floor__only_closes_fully(env, trader):
    e = env.engine
    env.fund(trader, 20)
    env.trade(trader, ETH, "0.025")  # 50 USD, the floor
    env.set_price(ETH, 1_900)  # 47.5 USD now
    with ape.reverts(TOO_SMALL):
        env.trade(trader, ETH, "-0.01")
    with ape.reverts(TOO_SMALL):
        e.trade(ETH, 1, MAX_UINT, sender=trader)
    env.trade(trader, ETH, "0.002")  # back over the floor: 0.027 * 1,900 = 51.3 USD
    env.trade(trader, ETH, "-0.027")
    assert e.position_mask(trader.address) == 0


def test_dust__liquidation_closes_the_dust_market_fully_and_the_other_partially(env, trader, liquidator, solvent):
    env.fund(trader, 1_000)
    env.trade(trader, ETH, 4)
    env.trade(trader, BTC, "0.001")  # 60 USD: any cut of a sixth or more leaves dust
    env.set_price(ETH, 1_800)
    _, expect = liquidate_and_compare(env, trader.address, liquidator)
    assert expect.fraction * 6 > WAD and not expect.full
    assert env.engine.position(trader.address, BTC).size == 0
    assert 0 < env.engine.position(trader.address, ETH).size < 4 * WAD


# A TOP-UP RACED AGAINST A LIQUIDATION #


def in_one_block(chain, *sends):
    """Sends the transactions (each with an explicit gas limit) and mines them in one block, in
    order; returns their receipts."""
    chain.provider.auto_mine = False
    try:
        sent = [send() for send in sends]
    finally:
        chain.mine()
        chain.provider.auto_mine = True
    receipts = [chain.provider.get_receipt(s.txn_hash) for s in sent]
    assert len({r.block_number for r in receipts}) == 1
    return receipts


def _liquidatable_trader(env, trader):
    """Long 4 ETH on 1,000 at 2,000, ETH at 1,800: equity about 196, maintenance 360."""
    env.fund(trader, 1_000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, 1_800)
    assert env.engine.health(trader.address).liquidatable


def _approve_top_up(env, trader, usd) -> int:
    amount = env.mint(trader, usd)
    env.token.approve(env.engine.address, amount, sender=trader)
    return amount


def test_top_up_in_the_same_block__enough__liquidation_refused_and_batch_skips_cheaply(
    env, chain, trader, trader2, liquidator, solvent
):
    _liquidatable_trader(env, trader)
    amount = _approve_top_up(env, trader, 300)
    coll = env.engine.collateral(trader.address)
    keepers = [env.token.balanceOf(k.address) for k in (liquidator, trader2)]
    e = env.engine
    deposit, single, batch = in_one_block(
        chain,
        lambda: e.deposit(amount, sender=trader, gas=300_000),
        lambda: e.liquidate(trader.address, sender=liquidator, gas=2_000_000, raise_on_revert=False),
        lambda: e.liquidate_many([trader.address], sender=trader2, gas=2_000_000),
    )
    assert not deposit.failed and single.failed and not batch.failed
    assert batch.decode_logs(e.Liquidation) == []
    print(f"\nlosing the race: liquidate reverts after {single.gas_used:,} gas, liquidate_many skips for {batch.gas_used:,}")
    assert batch.gas_used < 100_000
    assert e.collateral(trader.address) == coll + amount * env.scale
    assert e.position(trader.address, ETH).size == 4 * WAD
    assert [env.token.balanceOf(k.address) for k in (liquidator, trader2)] == keepers
    with ape.reverts("engine: not liquidatable"):  # why the single one failed, at the same state
        e.liquidate(trader.address, sender=liquidator)


def test_top_up_in_the_same_block__too_small__liquidated_against_the_new_equity(
    env, chain, trader, liquidator, solvent
):
    _liquidatable_trader(env, trader)
    amount = _approve_top_up(env, trader, 50)
    coll, positions, _ = model_account(env, trader.address)
    insurance = env.engine.insurance_fund()
    without = model.liquidate(coll, positions, model_liq(env), insurance, scale=env.scale)
    expect = model.liquidate(coll + amount * env.scale, positions, model_liq(env), insurance, scale=env.scale)
    e = env.engine
    _, liq = in_one_block(
        chain,
        lambda: e.deposit(amount, sender=trader, gas=300_000),
        lambda: e.liquidate(trader.address, sender=liquidator, gas=2_000_000),
    )
    [log] = liq.decode_logs(e.Liquidation)
    assert (log.fraction, log.penalty, log.penalty_paid, log.reward) == (expect.fraction, expect.penalty, expect.paid, expect.reward)
    assert e.collateral(trader.address) == expect.collateral_after
    assert e.position(trader.address, ETH).size == expect.new_sizes[0] > 0
    assert expect.fraction < without.fraction  # the top-up counted
    h = e.health(trader.address)
    assert h.equity >= model.ceil_div(env.config.liquidation_params().liq_target * h.maintenance_req, WAD)


# THE LARGEST ACCOUNT #


def sixteen_market_env(project, chain, deployer, lp):
    """A deployment with the most markets an engine takes (16), each priced like ETH-USD at 2,000 by
    its own feed and oracle, and a 20M pool. The one place these tests list extra markets."""

    def edit(raw):
        eth = raw["markets"][ETH]
        raw["markets"] = [{**eth, "name": f"M{i}", "feed": {**eth["feed"], "description": f"M{i}"}} for i in range(16)]

    return make_env(project, chain, deployer, lp, derive_config(edit), pool_usd=20_000_000)


@pytest.fixture(scope="module")
def wide(project, chain, deployer, lp):
    return sixteen_market_env(project, chain, deployer, lp)


def _open_everywhere(env, who, markets, usd_per_market):
    """1,000 units in each market (2M USD each), on 10.3% of the notional as collateral."""
    env.fund(who, usd_per_market * len(markets))
    for m in markets:
        env.trade(who, m, 1_000)


def test_sixteen_market_account__liquidation_fits_a_block(wide, accounts, liquidator, solvent):
    """Accounts with 1, 2, 4, 8 and 16 positions of 2M USD each, all liquidated (partially) after a
    6% fall: the 16-position one well within a block, and no dearer than the per-position cost
    measured between 4 and 8 positions predicts."""
    e = wide.engine
    assert e.n_markets() == 16
    sizes = (1, 2, 4, 8, 16)
    holders = dict(zip(sizes, accounts[10:15]))
    for n, a in holders.items():
        _open_everywhere(wide, a, range(n), 206_000)
    assert e.position_mask(holders[16].address) == 2**16 - 1
    for m in range(16):
        wide.set_price(m, 1_880)  # -6%
    assert all(e.health(a.address).liquidatable for a in holders.values())
    fund_insurance(wide, liquidator, 100)  # so that no measured liquidation first sets the fund's slot

    gas = {}
    for n, a in holders.items():
        tx = e.liquidate(a.address, sender=liquidator)
        [log] = tx.decode_logs(e.Liquidation)
        assert not log.full
        gas[n] = tx.gas_used
    per_position = (gas[8] - gas[4]) // 4
    estimate = gas[8] + 8 * per_position
    print(
        "\nliquidation gas by positions: " + ", ".join(f"{n}: {g:,}" for n, g in gas.items())
        + f"; estimate for 16 from 4..8: {estimate:,} ({per_position:,} a position); "
        f"{BLOCK_GAS // gas[16]} 16-position liquidations fit a 30M block"
    )
    assert gas[16] < BLOCK_GAS // 10
    assert gas[16] <= estimate * 11 // 10  # linear in positions
    assert not e.health(holders[16].address).liquidatable


# LIQUIDATING YOURSELF #


def _wealth(env, account, liquidator) -> int:
    """What the pair owns, WAD: the account's equity at oracle prices plus the liquidator's tokens."""
    tokens = env.token.balanceOf(liquidator.address) * env.scale if liquidator != account else 0
    return env.engine.health(account.address).equity + env.token.balanceOf(account.address) * env.scale + tokens


def _close_vs_liquidate(env, chain, account, liquidator):
    """(wealth of the pair if the account closes everything itself, if `liquidator` liquidates it)."""
    snap = chain.snapshot()
    for m in range(env.engine.n_markets()):
        size = env.engine.position(account.address, m).size
        if size:
            env.engine.trade(m, -size, 0 if size > 0 else MAX_UINT, sender=account)
    closing = _wealth(env, account, liquidator)
    chain.restore(snap)
    env.engine.liquidate(account.address, sender=liquidator)
    return closing, _wealth(env, account, liquidator)


@pytest.mark.parametrize("who", ["self", "second_address"])
@pytest.mark.parametrize("price, full", [(1_800, False), (1_780, True)], ids=["partial", "full"])
def test_self_liquidation__solvent__pays_less_than_closing(env, chain, trader, trader2, who, price, full, solvent):
    liquidator = trader if who == "self" else trader2
    env.fund(trader, 1_000)
    env.trade(trader, ETH, 4)
    env.set_price(ETH, price)
    before = _wealth(env, trader, liquidator)
    closing, liquidated = _close_vs_liquidate(env, chain, trader, liquidator)
    assert (env.engine.position_mask(trader.address) == 0) == full
    assert liquidated < closing <= before


@pytest.mark.parametrize("price", [1_893, 1_800, 1_600], ids=["partial", "full", "underwater"])
def test_self_liquidation__round_trip_from_the_deposit__never_pays(env, trader, trader2, price, solvent):
    """Deposit the least that opens a position (its initial requirement and fee), let the price
    fall, liquidate it from a second address: the pair ends with less than it deposited, even when
    the account is underwater and the reward comes from the insurance fund and the pool."""
    deposit = env.fund(trader, "20.2") * env.scale  # 0.1 ETH: 20 USD initial requirement, 0.1 fee
    env.trade(trader, ETH, "0.1")
    env.set_price(ETH, price)
    assert env.engine.health(trader.address).liquidatable
    env.engine.liquidate(trader.address, sender=trader2)
    assert _wealth(env, trader, trader2) < deposit


def test_self_liquidation__equity_below_the_reward__gains_at_most_the_reward_floor(env, chain, trader, trader2, solvent):
    """DESIGN 5.3 asks that liquidating yourself never pays, and bounds l * min_position_notional >=
    min_keeper_reward for it. That bound assumes the account pays its penalty. When a price gap
    leaves equity below the keeper reward, the account pays only its equity and the insurance fund
    tops the reward up, so that an underwater account is still worth liquidating. The engine caps
    that top-up: the reward is never more than max(paid, min_keeper_reward), so a second address of
    the owner gains at most the floor over closing (before the cap: 30% of the whole penalty, up to
    max_keeper_reward). Here: 0.1 ETH bought at 2,000, ETH at 1,803.5, equity 0.45 USD; closing
    yields 0.36; the penalty would have paid the liquidator 1.08. A known limit (docs/security.md)."""
    env.fund(trader, "20.2")
    env.trade(trader, ETH, "0.1")
    env.set_price(ETH, "1803.5")
    h = env.engine.health(trader.address)
    liq = env.config.liquidation_params()
    assert 0 < h.equity < liq.keeper_share * h.maintenance_req * 2 // 5 // WAD
    closing, liquidated = _close_vs_liquidate(env, chain, trader, trader2)
    print(f"\nequity {h.equity / WAD:.4f} USD: closing yields {closing / WAD:.4f}, self-liquidation {liquidated / WAD:.4f}")
    assert liquidated - closing <= liq.min_keeper_reward


# ROUND TRIPS AT AN UNCHANGED PRICE #


ROUND_TRIPS = {
    "long_from_no_skew": (0, [5], [-5]),
    "short_from_no_skew": (0, [-5], [5]),
    "short_against_a_long_skew": (100, [-50], [50]),  # opens at a premium, pays it back
    "long_with_a_long_skew": (100, [20], [-20]),
    "close_in_pieces": (0, [7], [-1] * 7),
    "open_in_pieces": (-30, [1] * 7, [-7]),
    "through_a_flip": (0, [5], [-10, 5]),
}


@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_round_trip__unchanged_price__never_profits(env, trader, trader2, case, solvent):
    skew, opens, closes = ROUND_TRIPS[case]
    env.fund(trader2, 100_000)
    if skew:
        env.trade(trader2, ETH, skew)
    env.fund(trader, 20_000)
    coll = env.engine.collateral(trader.address)
    txs = [env.trade(trader, ETH, size) for size in opens + closes]
    assert env.engine.position_mask(trader.address) == 0
    logs = fill_logs(env, *txs)
    realized, fees = sum(log.realized_pnl for log in logs), sum(log.fee for log in logs)
    assert -1_000 * len(logs) <= realized <= 0  # the skew fill is path-independent: only rounding
    assert fees > 0
    assert env.engine.collateral(trader.address) == coll + realized - fees < coll


def _sandwich(env, attacker, victim, a, v):
    """The attacker buys `a`, the victim buys `v` (refused first at its quoted fill, then filled with
    no limit), the attacker sells `a`; all at one oracle price. Returns (the attacker's realized
    PnL, its two fees, P * a * v / skew_scale)."""
    e = env.engine
    env.fund(attacker, 1_000 * a)
    env.fund(victim, 1_000 * v)
    quote = e.fill_price(ETH, v * WAD)
    coll = e.collateral(attacker.address)
    front = env.trade(attacker, ETH, a)
    with ape.reverts("engine: price limit"):  # a victim limited to its quote is not filled
        env.trade(victim, ETH, v, limit=quote)
    assert fill_logs(env, env.trade(victim, ETH, v))[0].new_size == v * WAD
    back = env.trade(attacker, ETH, -a)
    [first, last] = fill_logs(env, front, back)
    fees = first.fee + last.fee
    assert e.collateral(attacker.address) == coll + last.realized_pnl - fees
    premium = e.price(ETH) * a * v * WAD // e.market(ETH).params.skew_scale
    print(f"\nsandwich {a} around {v}: captured {last.realized_pnl / WAD:,.2f} USD, paid {fees / WAD:,.2f} in fees")
    assert abs(last.realized_pnl - premium) < WAD // 100
    return last.realized_pnl, fees


def test_sandwich__at_the_exposure_cap__does_not_pay_and_a_quoted_limit_refuses_it(env, trader, trader2, solvent):
    """A sandwich captures P * a * v / skew_scale of skew premium and pays two taker fees,
    2 * fee * P * a: it pays when v > 2 * fee * skew_scale (1,000 ETH on ETH-USD). With the default
    pool (1M, max_pool_usage 1) the skew cannot pass 500 ETH, so it loses."""
    captured, fees = _sandwich(env, trader, trader2, 100, 399)
    assert 0 < captured < fees


def test_sandwich__with_a_large_pool__pays_against_a_loose_limit_only(wide, accounts, solvent):
    """With a 20M pool the skew may reach 10,000 ETH: a victim that buys 3,000 ETH with no price
    limit pays the attacker's front-run, net of fees (a property of skew pricing with immediate
    fills; the victim's acceptable_price is its only protection)."""
    captured, fees = _sandwich(wide, accounts[15], accounts[16], 1_000, 3_000)
    assert captured > fees
