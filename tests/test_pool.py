"""RiskPool: ERC-4626 share math with a decimals offset, the reserve that traders' skew holds back
from LPs, the engine-only `pay`, the one-time `set_engine`, share inflation, and trader PnL moving
the pool's assets."""

from __future__ import annotations

import ape
import pytest

from helpers import ETH, BTC, WAD, FEED_DECIMALS, assert_solvent, base_config, make_env

OFFSET = 10**6  # decimals_offset 6 in config/local.yaml
USDC = 10**6
ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture(scope="module")
def bare(project, chain, deployer, lp, env):
    """A second deployment whose pool has no deposits yet (own mock USDC)."""
    return make_env(project, chain, deployer, lp, base_config(), pool_usd=0)


def approve_pool(e, who, usd) -> int:
    amount = e.mint(who, usd)
    e.token.approve(e.pool.address, amount, sender=who)
    return amount


def to_shares(assets, total_supply, total_assets, up=False):
    num, den = assets * (total_supply + OFFSET), total_assets + 1
    return -(-num // den) if up else num // den


def to_assets(shares, total_supply, total_assets, up=False):
    num, den = shares * (total_assets + 1), total_supply + OFFSET
    return -(-num // den) if up else num // den


def ceil_div(a, b):
    return -(-a // b)


def expected_reserve(e) -> int:
    """reserve_factor * sum over markets of |skew| * price, in tokens, rounded up at every step like
    the contract: computed here from the feeds' answers, not from the engine's view."""
    total = 0
    for i, feed in enumerate(e.feeds):
        m = e.engine.market(i)
        skew = abs(m.oi_long - m.oi_short)
        price = feed.latestRoundData()[1] * 10 ** (18 - FEED_DECIMALS)
        total += ceil_div(skew * price, WAD)
    return ceil_div(ceil_div(total * e.engine.reserve_factor(), WAD), e.scale)


# --- share math ---------------------------------------------------------------------------------------


def test_deposit__first_1000_usdc__mints_1000e12_shares(bare, lp):
    amount = approve_pool(bare, lp, 1_000)
    assert bare.pool.totalSupply() == 0 and bare.pool.totalAssets() == 0
    expected = 1_000 * 10**12
    assert bare.pool.convertToShares(amount) == expected
    assert bare.pool.previewDeposit(amount) == expected
    tx = bare.pool.deposit(amount, sender=lp)
    assert bare.pool.balanceOf(lp.address) == expected
    assert bare.pool.totalSupply() == expected
    assert bare.pool.totalAssets() == amount == 1_000 * USDC
    assert bare.pool.decimals() == 12
    [log] = tx.decode_logs(bare.pool.Deposit)
    assert (log.sender, log.owner, log.assets, log.shares) == (lp.address, lp.address, amount, expected)


def test_deposit__after_pool_gain__mints_by_exchange_rate(bare, lp, trader):
    bare.pool.deposit(approve_pool(bare, lp, 1_000), sender=lp)
    # the pool gains 37.5 USDC (as from trader losses): one share is now worth more
    bare.token.mint(bare.pool.address, 37_500_000, sender=bare.deployer)
    ts, ta = bare.pool.totalSupply(), bare.pool.totalAssets()
    amount = approve_pool(bare, trader, "333.333333")
    expected = to_shares(amount, ts, ta)
    assert bare.pool.previewDeposit(amount) == expected
    bare.pool.deposit(amount, trader.address, sender=trader)
    assert bare.pool.balanceOf(trader.address) == expected
    assert expected < amount * 10**6  # fewer shares per token than at the start
    # the new depositor can take out at most what it put in
    assert bare.pool.maxWithdraw(trader.address) == to_assets(expected, ts + expected, ta + amount) <= amount


def test_mint__exact_shares__takes_assets_rounded_up(bare, lp, trader):
    bare.pool.deposit(approve_pool(bare, lp, 1_000), sender=lp)
    bare.token.mint(bare.pool.address, 1_234_567, sender=bare.deployer)
    ts, ta = bare.pool.totalSupply(), bare.pool.totalAssets()
    shares = 123_456_789_012_345
    cost = to_assets(shares, ts, ta, up=True)
    assert bare.pool.previewMint(shares) == cost
    approve_pool(bare, trader, 1_000)
    bal = bare.token.balanceOf(trader.address)
    bare.pool.mint(shares, sender=trader)
    assert bare.pool.balanceOf(trader.address) == shares
    assert bare.token.balanceOf(trader.address) == bal - cost
    assert bare.pool.totalAssets() == ta + cost


def test_withdraw__exact_assets__burns_shares_rounded_up(env, lp, solvent):
    ts, ta = env.pool.totalSupply(), env.pool.totalAssets()
    assets = 12_345 * USDC + 678_901
    burnt = to_shares(assets, ts, ta, up=True)
    assert env.pool.previewWithdraw(assets) == burnt
    shares, bal = env.pool.balanceOf(lp.address), env.token.balanceOf(lp.address)
    tx = env.pool.withdraw(assets, sender=lp)
    assert env.pool.balanceOf(lp.address) == shares - burnt
    assert env.token.balanceOf(lp.address) == bal + assets
    assert env.pool.totalAssets() == ta - assets
    [log] = tx.decode_logs(env.pool.Withdraw)
    assert (log.receiver, log.owner, log.assets, log.shares) == (lp.address, lp.address, assets, burnt)


def test_redeem__exact_shares__pays_assets_rounded_down(env, lp, trader2, solvent):
    ts, ta = env.pool.totalSupply(), env.pool.totalAssets()
    shares = env.pool.balanceOf(lp.address) // 7
    paid = to_assets(shares, ts, ta)
    assert env.pool.previewRedeem(shares) == paid
    bal = env.token.balanceOf(trader2.address)
    env.pool.redeem(shares, trader2.address, sender=lp)  # to another receiver
    assert env.token.balanceOf(trader2.address) == bal + paid
    assert env.pool.totalSupply() == ts - shares


def test_withdraw__by_approved_spender__burns_owner_shares(env, lp, trader2):
    burnt = env.pool.previewWithdraw(1_000 * USDC)
    env.pool.approve(trader2.address, burnt, sender=lp)
    shares, bal = env.pool.balanceOf(lp.address), env.token.balanceOf(trader2.address)
    env.pool.withdraw(1_000 * USDC, trader2.address, lp.address, sender=trader2)
    assert env.pool.balanceOf(lp.address) == shares - burnt
    assert env.token.balanceOf(trader2.address) == bal + 1_000 * USDC
    assert env.pool.allowance(lp.address, trader2.address) == 0


# --- reserve -----------------------------------------------------------------------------------------------


@pytest.fixture
def skewed(env, trader, trader2):
    """ETH long skew of 66.666... at an odd price and a BTC short skew: a reserve of about
    0.25 * (66.67 * 2000.12 + 0.75 * 60000) = 44,586 USDC."""
    env.set_price(ETH, "2000.12345678")
    env.fund(trader, 100_000)
    env.trade(trader, ETH, "100.000000000000000001")
    env.fund(trader2, 100_000)
    env.trade(trader2, ETH, "-33.333333333333333335")
    env.trade(trader2, BTC, "-0.75")
    reserve = expected_reserve(env)
    assert 44_000 * USDC < reserve < 45_000 * USDC
    return reserve


def test_reserve_requirement__matches_independent_computation(env, skewed):
    assert env.engine.reserve_requirement() == skewed
    assert env.pool.free_assets() == env.pool.totalAssets() - skewed


def test_reserve_requirement__no_skew__is_zero(env, trader, trader2):
    env.fund(trader, 10_000)
    env.fund(trader2, 10_000)
    env.trade(trader, ETH, 3)
    env.trade(trader2, ETH, -3)
    assert env.engine.market(ETH).oi_long == 3 * WAD
    assert env.engine.reserve_requirement() == 0
    assert env.pool.free_assets() == env.pool.totalAssets()


def test_withdraw__beyond_free_assets__reverts_reserved(env, lp, skewed, solvent):
    free = env.pool.totalAssets() - skewed
    assert env.pool.maxWithdraw(lp.address) == free
    with ape.reverts("pool: reserved"):
        env.pool.withdraw(free + 1, sender=lp)
    bal = env.token.balanceOf(lp.address)
    env.pool.withdraw(free, sender=lp)  # the bound itself passes
    assert env.token.balanceOf(lp.address) == bal + free
    assert env.pool.totalAssets() == skewed
    assert env.pool.free_assets() == 0
    assert env.pool.maxWithdraw(lp.address) == 0
    assert env.pool.maxRedeem(lp.address) == 0


def test_redeem__beyond_free_assets__reverts_reserved(env, lp, skewed, solvent):
    ts, ta = env.pool.totalSupply(), env.pool.totalAssets()
    free = ta - skewed
    max_redeem = to_shares(free, ts, ta)
    assert env.pool.maxRedeem(lp.address) == max_redeem < env.pool.balanceOf(lp.address)
    too_many = to_shares(free + 1, ts, ta, up=True)
    assert to_assets(too_many, ts, ta) == free + 1
    with ape.reverts("pool: reserved"):
        env.pool.redeem(too_many, sender=lp)
    bal = env.token.balanceOf(lp.address)
    env.pool.redeem(max_redeem, sender=lp)
    paid = env.token.balanceOf(lp.address) - bal
    assert paid == to_assets(max_redeem, ts, ta)
    assert free - 1 <= paid <= free
    assert env.pool.totalAssets() >= skewed


def test_max_withdraw__small_lp__is_its_own_balance(env, trader2, skewed):
    amount = approve_pool(env, trader2, 100)
    env.pool.deposit(amount, sender=trader2)
    shares = env.pool.balanceOf(trader2.address)
    own = env.pool.convertToAssets(shares)
    assert amount - 1 <= own <= amount
    assert env.pool.maxWithdraw(trader2.address) == own < env.pool.free_assets()
    assert env.pool.maxRedeem(trader2.address) == shares


def test_reserve__price_move__moves_free_assets(env, skewed):
    free_before = env.pool.free_assets()
    env.set_price(ETH, 2_500)
    reserve = expected_reserve(env)
    assert reserve > skewed
    assert env.engine.reserve_requirement() == reserve
    assert env.pool.free_assets() == env.pool.totalAssets() - reserve < free_before


# --- reverts -------------------------------------------------------------------------------------------------


def test_zero_amounts__revert_zero_amount(env, lp):
    with ape.reverts("pool: zero amount"):
        env.pool.deposit(0, sender=lp)
    with ape.reverts("pool: zero amount"):
        env.pool.mint(0, sender=lp)
    with ape.reverts("pool: zero amount"):
        env.pool.withdraw(0, sender=lp)
    with ape.reverts("pool: zero amount"):
        env.pool.redeem(0, sender=lp)


def test_withdraw__more_than_own_assets__reverts_exceeds_balance(env, lp, trader):
    with ape.reverts("pool: exceeds balance"):
        env.pool.withdraw(1, sender=trader)
    own = env.pool.maxWithdraw(lp.address)
    with ape.reverts("pool: exceeds balance"):
        env.pool.withdraw(own + 1, sender=lp)


def test_redeem__more_than_own_shares__reverts_exceeds_balance(env, lp, trader):
    with ape.reverts("pool: exceeds balance"):
        env.pool.redeem(1, sender=trader)
    shares = env.pool.balanceOf(lp.address)
    with ape.reverts("pool: exceeds balance"):
        env.pool.redeem(shares + 1, sender=lp)


def test_pay__not_engine__reverts(env, lp, deployer):
    ta = env.pool.totalAssets()
    with ape.reverts("pool: not engine"):
        env.pool.pay(1, sender=lp)
    with ape.reverts("pool: not engine"):
        env.pool.pay(1, sender=deployer)
    assert env.pool.totalAssets() == ta


def test_set_engine__already_set__reverts(env, deployer):
    with ape.reverts("pool: engine already set"):
        env.pool.set_engine(env.engine.address, sender=deployer)


def test_set_engine__fresh_pool__deployer_only_and_once(project, env, bare, deployer, trader):
    pool = project.RiskPool.deploy(env.token.address, 6, "Fresh", "FRSH", sender=deployer)
    assert pool.engine() == ZERO_ADDRESS
    with ape.reverts("pool: not deployer"):
        pool.set_engine(env.engine.address, sender=trader)
    with ape.reverts("pool: zero address"):
        pool.set_engine(ZERO_ADDRESS, sender=deployer)
    with ape.reverts("pool: engine token"):
        pool.set_engine(bare.engine.address, sender=deployer)  # another token's engine
    tx = pool.set_engine(env.engine.address, sender=deployer)
    assert pool.engine() == env.engine.address
    assert [e.engine for e in tx.decode_logs(pool.EngineSet)] == [env.engine.address]
    with ape.reverts("pool: engine already set"):
        pool.set_engine(env.engine.address, sender=deployer)


# --- share inflation -------------------------------------------------------------------------------------


def test_first_depositor_inflation__victim_loses_under_one_basis_point(bare, traders):
    attacker, victim = traders[0], traders[1]
    bare.pool.deposit(approve_pool(bare, attacker, "0.000001"), sender=attacker)  # 1 wei-unit
    assert bare.pool.balanceOf(attacker.address) == OFFSET
    bare.token.mint(attacker.address, 1_000_000 * USDC, sender=bare.deployer)
    bare.token.transfer(bare.pool.address, 1_000_000 * USDC, sender=attacker)  # donation
    ts, ta = bare.pool.totalSupply(), bare.pool.totalAssets()
    assert ta == 1_000_000 * USDC + 1

    # a deposit worth less than a share now mints nothing and is refused
    dust = approve_pool(bare, victim, "0.000001")
    with ape.reverts("pool: zero shares"):
        bare.pool.deposit(dust, sender=victim)

    deposit = approve_pool(bare, victim, 10_000)
    shares = to_shares(deposit, ts, ta)
    bare.pool.deposit(deposit, sender=victim)
    assert bare.pool.balanceOf(victim.address) == shares == 19_999
    redeemable = bare.pool.previewRedeem(shares)
    assert redeemable == to_assets(shares, ts + shares, ta + deposit)
    loss = deposit - redeemable
    assert 0 < loss
    assert loss * 10_000 < deposit  # under 0.01%
    # the attacker gained less than the victim lost: the attack does not pay
    attacker_value = bare.pool.previewRedeem(bare.pool.balanceOf(attacker.address))
    assert attacker_value - (1_000_000 * USDC + 1) < loss


# --- trader PnL moves the pool -----------------------------------------------------------------------------


def _pool_delta_from_trades(e, txs) -> int:
    """WAD the pool gains from trades: their fees minus the PnL they realized (Trade events)."""
    total = 0
    for tx in txs:
        for log in tx.decode_logs(e.engine.Trade):
            total += log.fee - log.realized_pnl
    return total


def test_trader_profit__is_paid_out_of_the_pool(env, trader, solvent):
    env.fund(trader, 20_000)
    ta0, owed0 = env.pool.totalAssets(), env.engine.pool_owed()
    txs = [env.trade(trader, ETH, 10)]
    env.set_price(ETH, "2200.5")
    txs.append(env.trade(trader, ETH, -10))
    gain = _pool_delta_from_trades(env, txs)
    realized = sum(log.realized_pnl for tx in txs for log in tx.decode_logs(env.engine.Trade))
    assert realized > 1_900 * WAD  # about 10 * 200.5 less the skew premium
    ta1, owed1 = env.pool.totalAssets(), env.engine.pool_owed()
    assert (ta1 - ta0) * env.scale == gain + owed0 - owed1
    assert ta0 - ta1 > 1_890 * USDC
    assert env.engine.collateral(trader.address) == 20_000 * WAD + realized - sum(
        log.fee for tx in txs for log in tx.decode_logs(env.engine.Trade)
    )


def test_trader_loss__raises_the_pool(env, trader, solvent):
    env.fund(trader, 20_000)
    ta0, owed0 = env.pool.totalAssets(), env.engine.pool_owed()
    txs = [env.trade(trader, ETH, 10)]
    env.set_price(ETH, "1850.25")
    txs.append(env.trade(trader, ETH, -10))
    gain = _pool_delta_from_trades(env, txs)
    realized = sum(log.realized_pnl for tx in txs for log in tx.decode_logs(env.engine.Trade))
    assert realized < -1_490 * WAD
    ta1, owed1 = env.pool.totalAssets(), env.engine.pool_owed()
    assert (ta1 - ta0) * env.scale == gain + owed0 - owed1
    assert ta1 - ta0 > 1_490 * USDC
    # LPs' shares are worth more
    assert env.pool.convertToAssets(10**18) > to_assets(10**18, env.pool.totalSupply(), ta0)
    assert_solvent(env)


def test_constructor__decimals_offset_above_18__reverts(project, accounts, env):
    with ape.reverts("pool: decimals offset"):
        project.RiskPool.deploy(env.token.address, 19, "Ballast LP", "bLP", sender=accounts[16])
