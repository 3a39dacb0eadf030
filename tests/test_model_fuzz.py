"""The engine's money paths against the independent model, on random accounts and price moves.

Each example: optional skew from another trader, a trader with random collateral opens random
positions in both markets (the model predicts the fill, fee, cost basis and whether the margin check
passes, and the engine must agree, revert included), prices move, the health view must equal the
model's, and a liquidatable account is liquidated and compared field by field (fraction, closes,
penalty split, reward, bad debt, insurance, pool gain). The chain is restored after every example.
"""

from decimal import Decimal

import ape
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import model
from helpers import BTC, ETH, WAD, assert_solvent, model_params
from test_liquidation import liquidate_and_compare, model_account

BASE = {ETH: 2000, BTC: 60000}

examples = st.fixed_dictionaries(
    {
        "collateral": st.integers(min_value=20, max_value=200_000),
        "notional": st.tuples(st.integers(0, 400_000), st.integers(0, 400_000)),
        "side": st.tuples(st.sampled_from([1, -1]), st.sampled_from([1, -1])),
        "skew": st.tuples(st.integers(-200, 200), st.integers(-6, 6)),
        "move": st.tuples(st.integers(-400, 400), st.integers(-400, 400)),  # per mille
        "insurance": st.integers(0, 3000),
    }
)


@pytest.fixture(scope="module")
def funded(env, trader, trader2, liquidator):
    """Tokens and approvals set up once, so that an example spends its transactions on the engine:
    trader2 holds 5M collateral for the skew, trader and liquidator hold approved tokens."""
    env.fund(trader2, 5_000_000)
    for who in (trader, liquidator):
        env.mint(who, 10_000_000)
        env.token.approve(env.engine.address, 2**256 - 1, sender=who)
    env.touched.add(trader.address)
    return env


@settings(
    max_examples=int(__import__("os").environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ex=examples)
def test_engine_matches_model(funded, chain, trader, trader2, liquidator, ex):
    snapshot = chain.snapshot()
    try:
        run_example(funded, trader, trader2, liquidator, ex)
    finally:
        chain.restore(snapshot)


def run_example(env, trader, trader2, liquidator, ex):
    if ex["insurance"]:
        env.engine.fund_insurance(env.units(ex["insurance"]), sender=liquidator)

    # another trader's position sets the skew the trader's fills see
    for mid in (ETH, BTC):
        if ex["skew"][mid]:
            env.trade(trader2, mid, ex["skew"][mid])

    env.engine.deposit(env.units(ex["collateral"]), sender=trader)
    for mid in (ETH, BTC):
        usd = ex["notional"][mid]
        if usd == 0:
            continue
        delta = ex["side"][mid] * usd * WAD // BASE[mid]
        try_trade(env, trader, mid, delta)

    for mid in (ETH, BTC):
        env.set_price(mid, Decimal(BASE[mid]) * (1000 + ex["move"][mid]) / 1000)

    coll, positions, _ = model_account(env, trader.address)
    h = env.engine.health(trader.address)
    expect = model.account_health(coll, positions)
    assert (h.equity, h.initial_req, h.maintenance_req, h.liquidatable) == (
        expect.equity,
        expect.initial_req,
        expect.maintenance_req,
        expect.liquidatable,
    )
    if expect.liquidatable:
        liquidate_and_compare(env, trader.address, liquidator)
        after = env.engine.health(trader.address)
        if env.engine.position_mask(trader.address):
            target = env.config.liquidation_params().liq_target
            assert after.equity >= model.ceil_div(target * after.maintenance_req, WAD)
    else:
        with ape.reverts("engine: not liquidatable"):
            env.engine.liquidate(trader.address, sender=liquidator)
    assert_solvent(env)


def try_trade(env, trader, mid, delta):
    """Trades `delta` if the model says the margin check passes, and asserts a revert otherwise."""
    if delta == 0:
        return
    m = env.engine.market(mid)
    price = env.engine.price(mid)
    fill = model.fill_price(price, m.oi_long - m.oi_short, delta, m.params.skew_scale)
    coll, positions, ids = model_account(env, trader.address)
    pos = env.engine.position(trader.address, mid)
    new_size, new_cost, realized = model.apply_trade(pos.size, pos.cost, delta, fill)
    fee = model.trade_fee(delta, fill, m.params.taker_fee)
    mp = positions[0].market if positions and ids[0] == mid else None
    params = mp or model_params(env, mid)
    after = [p for p, i in zip(positions, ids) if i != mid] + [model.Pos(new_size, new_cost, price, params)]
    notional = model.ceil_div(abs(new_size) * price, WAD)
    too_small = new_size != 0 and notional < m.params.min_position_notional
    ok = model.post_trade_ok(coll + realized - fee, after, increases=True)
    if too_small:
        with ape.reverts("engine: position too small"):
            env.engine.trade(mid, delta, 2**256 - 1 if delta > 0 else 0, sender=trader)
        return
    if not ok:
        with ape.reverts("engine: insufficient margin"):
            env.engine.trade(mid, delta, 2**256 - 1 if delta > 0 else 0, sender=trader)
        return
    tx = env.engine.trade(mid, delta, 2**256 - 1 if delta > 0 else 0, sender=trader)
    log = tx.decode_logs(env.engine.Trade)[0]
    assert (log.fill_price, log.fee, log.realized_pnl, log.new_size) == (fill, fee, realized, new_size)
    p = env.engine.position(trader.address, mid)
    assert (p.size, p.cost) == (new_size, new_cost)
