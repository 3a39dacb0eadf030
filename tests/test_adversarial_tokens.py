"""Adversarial tokens: a collateral token whose transfers call back into the engine and the pool,
fee-on-transfer tokens, tokens sent straight to the engine or the pool, and first-depositor share
inflation of the pool.

| case | expected outcome | test |
| --- | --- | --- |
| a transfer callback re-entering engine or pool (deposit, withdraw, trade, liquidate, pool deposit and redeem) from inside deposit, withdraw, trade (fee to the pool, profit from the pool), liquidate, pool deposit and redeem | the inner call reverts bare (the lock), the outer call completes exactly, the inner call's account is unchanged; the same call outside a transfer works | test_hook__reentry__is_refused_by_the_lock |
| engine views (health) inside an engine call | refused too (read-only reentrancy) | test_hook__reentry__is_refused_by_the_lock[withdraw<-health] |
| a pool callback calling the engine (no lock of the engine is held) | allowed: engine state stays exact | test_hook__pool_callback_into_the_engine__is_allowed_and_exact |
| the pool's share price read inside a pool deposit callback | reverts or equals the price outside | test_hook__pool_share_price_inside_a_deposit__is_not_readable (FAILS: see its docstring) |
| fee-on-transfer deposit and insurance | credits only what arrived | test_tokens: test_fee_token__deposit__credits_only_what_arrived |
| fee-on-transfer pool deposit and mint | "pool: transfer fee not supported", nothing changes | test_tokens: test_fee_token__pool_deposit_and_mint__refused |
| fee-on-transfer withdraw, pool payments | the receiver bears the fee; a claim on the pool is recorded | test_tokens: test_fee_token__trade_at_a_loss_and_withdraw__stays_solvent, test_fee_token__trader_profit_paid_by_pool__engine_stays_solvent |
| tokens sent straight to the engine | no collateral, insurance, pool claim or health changes; the next deposit credits only its own tokens; the donation stays in the engine, owned by no one | test_donation_to_engine__changes_no_account_and_stays_unowned |
| tokens sent straight to the pool | total supply unchanged; every LP's shares are worth exactly shares * (assets + 1) / (supply + 10**6); engine accounts unchanged | test_donation_to_pool__raises_every_lps_share_price_only |
| first depositor: 1 unit, a donation D, a victim deposit V | a victim deposit worth less than a share reverts "pool: zero shares"; otherwise the victim loses at most one share's worth (about D / 2e6) and the attacker loses about D / 2, over 10**5 times as much | test_pool: test_first_depositor_inflation__victim_loses_under_one_basis_point; test_first_depositor_inflation__attacker_pays_far_more_than_the_victim_loses |
"""

from __future__ import annotations

import ape
import pytest

from adversarial_support import MAX_UINT, derive_config, ledger
from helpers import BTC, ETH, WAD, base_config, make_env

UNIT = 10**6  # one token unit of a 6-decimal token (one dollar)
OFFSET = 10**6  # the pool's decimals offset (config/local.yaml: 6)


# A TOKEN THAT CALLS BACK #


@pytest.fixture(scope="module")
def hook_env(project, chain, deployer, lp):
    """The default deployment over MockHookToken (listed through the deploy script by address)."""
    token = project.MockHookToken.deploy(sender=deployer)
    return make_env(project, chain, deployer, lp, derive_config(lambda raw: raw.update(collateral=token.address)))


@pytest.fixture(scope="module")
def hook(project, hook_env, deployer, trader, traders):
    """The token, set up as an account of its own (1,000 of collateral, 1,000 in the pool, tokens and
    allowances to spare) so that each re-entering call would work outside a transfer; `trader` long
    2 ETH on 10,000; traders[0] and traders[1] long 0.3 BTC on 1,600, liquidatable."""
    e = hook_env
    token = project.MockHookToken.at(e.token.address)
    token.mint(token.address, 10_000 * UNIT, sender=deployer)
    token.approve_from_token(e.engine.address, MAX_UINT, sender=deployer)
    token.approve_from_token(e.pool.address, MAX_UINT, sender=deployer)
    token.call_now(e.engine.address, e.engine.deposit.encode_input(1_000 * UNIT, token.address), sender=deployer)
    token.call_now(e.pool.address, e.pool.deposit.encode_input(1_000 * UNIT), sender=deployer)
    assert token.last_ok() and e.engine.collateral(token.address) == 1_000 * WAD
    e.touched.add(token.address)
    e.fund(trader, 10_000)
    e.trade(trader, ETH, 2)
    for t in traders[:2]:
        e.fund(t, 1_600)
        e.trade(t, BTC, "0.3")
    e.set_price(BTC, 56_000)
    assert e.engine.health(traders[0].address).liquidatable and e.engine.health(traders[1].address).liquidatable
    return token


def _inner(name, e, token, trader, victim):
    """(target, call data) of a call the token makes as itself."""
    engine, pool = e.engine, e.pool
    return {
        "deposit": (engine, engine.deposit.encode_input(UNIT, token.address)),
        "withdraw": (engine, engine.withdraw.encode_input(UNIT)),
        "trade": (engine, engine.trade.encode_input(ETH, WAD // 10, MAX_UINT)),
        "liquidate": (engine, engine.liquidate.encode_input(victim.address)),
        "health": (engine, engine.health.encode_input(trader.address)),
        "pool_deposit": (pool, pool.deposit.encode_input(UNIT)),
        "pool_redeem": (pool, pool.redeem.encode_input(10**12)),
    }[name]


def _outer(name, e, trader, lp, liquidator, victim):
    """Runs an operation whose token transfer fires the hook, and checks its own exact effect."""
    engine, pool, token = e.engine, e.pool, e.token
    if name == "deposit":
        amount = e.mint(trader, 100)
        token.approve(engine.address, amount, sender=trader)
        c0 = engine.collateral(trader.address)
        engine.deposit(amount, sender=trader)
        assert engine.collateral(trader.address) == c0 + amount * e.scale
    elif name == "withdraw":
        c0, t0 = engine.collateral(trader.address), token.balanceOf(trader.address)
        engine.withdraw(100 * UNIT, sender=trader)
        assert engine.collateral(trader.address) == c0 - 100 * WAD
        assert token.balanceOf(trader.address) == t0 + 100 * UNIT
    elif name == "trade_open":  # the fee goes to the pool with a transfer
        tx = e.trade(trader, ETH, 1)
        assert engine.position(trader.address, ETH).size == 3 * WAD
        assert [log.new_size for log in tx.decode_logs(engine.Trade)] == [3 * WAD]
    elif name == "trade_close":  # the profit comes from the pool: pool.pay transfers to the engine
        e.set_price(ETH, 2_200)
        tx = e.trade(trader, ETH, -2)
        assert engine.position_mask(trader.address) == 0
        assert tx.decode_logs(engine.Trade)[0].realized_pnl > 390 * WAD
    elif name == "liquidate":
        tx = engine.liquidate(victim.address, sender=liquidator)
        assert [log.account for log in tx.decode_logs(engine.Liquidation)] == [victim.address]
    elif name == "pool_deposit":
        amount = e.mint(lp, 1_000)
        token.approve(pool.address, amount, sender=lp)
        s0, minted = pool.balanceOf(lp.address), pool.previewDeposit(amount)
        pool.deposit(amount, sender=lp)
        assert pool.balanceOf(lp.address) == s0 + minted
    else:  # pool_redeem
        t0, paid = token.balanceOf(lp.address), pool.previewRedeem(10**17)
        pool.redeem(10**17, sender=lp)
        assert token.balanceOf(lp.address) == t0 + paid


REENTRY = [
    ("deposit", "deposit"),
    ("deposit", "trade"),
    ("withdraw", "withdraw"),
    ("withdraw", "pool_deposit"),  # the pool asks the locked engine whether deposits are paused
    ("withdraw", "health"),  # a view: read-only reentrancy is refused too
    ("trade_open", "liquidate"),
    ("trade_close", "withdraw"),
    ("trade_close", "pool_redeem"),  # inside pool.pay: the pool's own lock
    ("liquidate", "liquidate"),
    ("liquidate", "deposit"),
    ("pool_deposit", "pool_redeem"),
    ("pool_deposit", "pool_deposit"),
    ("pool_redeem", "pool_deposit"),
]


@pytest.mark.parametrize("outer, inner", REENTRY, ids=[f"{o}<-{i}" for o, i in REENTRY])
def test_hook__reentry__is_refused_by_the_lock(hook_env, hook, outer, inner, trader, traders, lp, liquidator):
    e = hook_env
    target, data = _inner(inner, e, hook, trader, traders[1])
    hook.arm(target.address, data, sender=trader)
    calls = hook.calls()
    mine = ledger(e, hook, traders[1])
    mine = {k: mine[k] for k in (hook.address, traders[1].address)}

    _outer(outer, e, trader, lp, liquidator, traders[0])

    assert hook.calls() == calls + 1  # the hook ran inside the operation
    assert hook.last_ok() is False
    assert hook.last_return() == b""  # a bare revert: the lock, not a reason of the code behind it
    after = ledger(e, hook, traders[1])
    assert {k: after[k] for k in mine} == mine

    # control: the very same call, made outside a transfer, goes through
    hook.call_now(target.address, data, sender=trader)
    assert hook.last_ok() is True


def test_hook__pool_callback_into_the_engine__is_allowed_and_exact(hook_env, hook, lp):
    """Inside a pool deposit only the pool is locked: a callback may deposit into the engine. The
    engine credits exactly what it received and the automatic solvency check holds."""
    e = hook_env
    target, data = _inner("deposit", e, hook, lp, lp)
    hook.arm(target.address, data, sender=lp)
    c0 = e.engine.collateral(hook.address)
    _outer("pool_deposit", e, lp, lp, lp, lp)
    assert hook.last_ok() is True
    assert e.engine.collateral(hook.address) == c0 + UNIT * e.scale


def test_hook__pool_share_price_inside_a_deposit__is_not_readable(hook_env, hook, lp):
    """The pool's ERC-4626 views (totalAssets, convertToAssets, preview*) must be inside RiskPool's
    `# pragma nonreentrancy on`. Inside a deposit's transferFrom the assets have
    arrived but the shares are not minted yet, so a callback reads an inflated share price (the
    read-only reentrancy that has fooled lending markets pricing vault shares). The engine's views
    refuse such a read; RiskPool defines these views itself so that its lock covers them."""
    e = hook_env
    data = e.pool.convertToAssets.encode_input(10**18)
    price = e.pool.convertToAssets(10**18)
    hook.arm(e.pool.address, data, sender=lp)
    _outer("pool_deposit", e, lp, lp, lp, lp)
    inside = int.from_bytes(hook.last_return(), "big") if hook.last_ok() else None
    assert inside in (None, price), f"share price read inside the deposit: {inside}, outside: {price}"


# DONATIONS #


@pytest.fixture(scope="module")
def donated(project, chain, deployer, lp):
    """A deployment of its own, held in a tuple: the automatic exact solvency check cannot know of a
    donation to the engine, so the test below checks the identity with the donation itself."""
    return (make_env(project, chain, deployer, lp, base_config()),)


def test_donation_to_engine__changes_no_account_and_stays_unowned(donated, trader, trader2, traders):
    (e,) = donated
    e.fund(trader, 1_000)
    e.trade(trader, ETH, 1)
    e.fund(trader2, 500)
    who = (trader, trader2)
    health = [tuple(e.engine.health(t.address)) for t in who]
    before = ledger(e, *who)

    donation = e.mint(traders[3], 5_000)
    e.token.transfer(e.engine.address, donation, sender=traders[3])

    after = ledger(e, *who)
    assert after.pop("engine_tokens") == before.pop("engine_tokens") + donation
    assert after == before
    assert [tuple(e.engine.health(t.address)) for t in who] == health

    # the next deposit credits only its own tokens, not the donation
    amount = e.fund(traders[2], 10)
    assert e.engine.collateral(traders[2].address) == amount * e.scale

    # every account still takes out exactly what it owns; the donation stays, owned by no one
    e.trade(trader, ETH, -1)
    for t in (trader, trader2, traders[2]):
        units = e.engine.collateral(t.address) // e.scale
        e.engine.withdraw(units, sender=t)
    unowned = e.token.balanceOf(e.engine.address) * e.scale - (
        e.collateral_sum() + e.engine.insurance_fund() + e.engine.pool_owed()
    )
    assert unowned == donation * e.scale


def test_donation_to_pool__raises_every_lps_share_price_only(env, lp, trader, trader2, traders):
    env.fund(trader, 2_000)
    env.trade(trader, ETH, 2)
    env.seed_pool(trader2, 10_000)
    lps = (lp, trader2)
    health = tuple(env.engine.health(trader.address))
    before = ledger(env, trader, *lps)
    supply, assets = env.pool.totalSupply(), env.pool.totalAssets()
    values = [env.pool.convertToAssets(env.pool.balanceOf(x.address)) for x in lps]

    donation = env.mint(traders[3], 50_000)
    env.token.transfer(env.pool.address, donation, sender=traders[3])

    after = ledger(env, trader, *lps)
    assert after.pop("pool_assets") == before.pop("pool_assets") + donation
    assert after == before  # shares, collateral, insurance, the engine's tokens: all unchanged
    assert tuple(env.engine.health(trader.address)) == health
    for x, v in zip(lps, values):
        shares = env.pool.balanceOf(x.address)
        new = env.pool.convertToAssets(shares)
        assert new == shares * (assets + donation + 1) // (supply + OFFSET)
        assert new > v
    # the LPs get the donation but for what the virtual shares hold (under a unit here), to rounding
    gained = sum(env.pool.convertToAssets(env.pool.balanceOf(x.address)) for x in lps) - sum(values)
    assert abs(gained - donation) <= len(lps)


# FIRST-DEPOSITOR SHARE INFLATION #


@pytest.fixture(scope="module")
def bare(project, chain, deployer, lp):
    """A deployment whose pool has no deposits yet."""
    return make_env(project, chain, deployer, lp, base_config(), pool_usd=0)


@pytest.mark.parametrize(
    "donation_usd, victim_usd",
    [(1_000, 10_000), (1_000_000, 10_000), (100_000_000, 1_000_000), (100_000_000, 175)],
    ids=["1k_vs_10k", "1M_vs_10k", "100M_vs_1M", "100M_vs_175"],
)
def test_first_depositor_inflation__attacker_pays_far_more_than_the_victim_loses(
    bare, traders, donation_usd, victim_usd
):
    """The attacker deposits one unit (10**6 shares), donates D, then a victim deposits V. With 10**6
    virtual shares the donation is shared with them: the attacker gets back about half of it, and
    the victim loses only the rounding of its shares, at most one share's worth (about D / 2e6).
    The last case is the worst for the victim relative to its deposit (3.5 shares rounded to 3: 14%
    of 175 USD), and the attacker paid about 50M USD for it."""
    e, attacker, victim = bare, traders[0], traders[1]
    e.seed_pool(attacker, "0.000001")
    donation = e.mint(attacker, donation_usd)
    e.token.transfer(e.pool.address, donation, sender=attacker)
    deposit = e.seed_pool(victim, victim_usd)

    supply, assets = e.pool.totalSupply(), e.pool.totalAssets()
    share_value = -(-(assets + 1) // (supply + OFFSET))  # one share, rounded up
    victim_loss = deposit - e.pool.previewRedeem(e.pool.balanceOf(victim.address))
    attacker_cost = 1 + donation - e.pool.previewRedeem(e.pool.balanceOf(attacker.address))
    print(f"\nD={donation_usd:,} V={victim_usd:,}: victim loses {victim_loss / UNIT:,.6f} USD, "
          f"attacker loses {attacker_cost / UNIT:,.2f} USD")
    assert 0 <= victim_loss <= share_value + 1
    assert attacker_cost > 10**5 * max(victim_loss, 1)
    assert attacker_cost > donation // 3  # about half of the donation stays with the virtual shares
