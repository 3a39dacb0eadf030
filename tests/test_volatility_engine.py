"""The engine's volatility term (DESIGN 3): sigma of ETH-USD through Black Thursday, replayed from the
shared candles as the answers a Chainlink feed would have published, against an independent float
EWMA; its decay afterwards; frequent reads of an unchanged price do not wash it out faster than
time; and the maintenance requirement follows max(bracket, vol_mmf) by itself."""

import math
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import adv_model
from helpers import ETH, FEED_DECIMALS, WAD

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _replay import feed_updates, path_points, read_candles  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "scripts" / "data"
PRICE_UNIT = 10**9  # the engine keeps the last price in units of 1e9 wei


def crash_answers():
    """About 220 answers of the ETH feed around the crash of 2020-03-12 (hour 34 of the file)."""
    [path] = DATA.glob("*black_thursday*.csv")
    updates = feed_updates(path_points(read_candles(path)))
    crash_hour = 1584007200
    start = next(i for i, u in enumerate(updates) if u.timestamp >= crash_hour) - 60
    return updates[start:start + 220]


def model_next_var(var, last_price, price, dt, tau):
    """var * e^(-dt/tau) + (1 - e^(-dt/tau)) * r^2 / dt, floats, WAD per second."""
    if dt <= 0:
        return var
    d = math.exp(-dt / tau)
    r = (price - last_price) / last_price
    return var * d + (1 - d) * r * r * WAD / dt


def model_vol_mmf(var, z, horizon):
    return z * math.sqrt(var * horizon / WAD)


def answer(usd) -> int:
    return int(Decimal(str(usd)) * 10**FEED_DECIMALS)


def publish_and_poke(env, chain, who, t, ans):
    """The feed answers at time t and the market is poked in a block of the same time."""
    chain.pending_timestamp = t
    env.feeds[ETH].set_answer(ans, sender=env.deployer)
    chain.pending_timestamp = t
    env.engine.poke(ETH, sender=who)


def test_crash_raises_sigma_then_time_decays_it(adv, chain, trader):
    env = adv
    p = env.engine.market(ETH).params
    answers = crash_answers()
    base = chain.blocks.head.timestamp + 10
    t0 = answers[0].timestamp
    var_model, last, last_t = 0.0, None, None
    pre_crash = peak = 0
    peak_model = 0.0
    for i, u in enumerate(answers):
        ans = answer(round(u.price, FEED_DECIMALS))
        t = base + u.timestamp - t0
        publish_and_poke(env, chain, trader, t, ans)
        q = ans * 10 ** (18 - FEED_DECIMALS) // PRICE_UNIT
        if last is not None:
            var_model = model_next_var(var_model, last, q, t - last_t, p.tau)
        last, last_t = q, t
        state = env.engine.market_state(ETH)
        assert state.variance == pytest.approx(var_model, rel=1e-6, abs=10)
        if i == 59:
            pre_crash = state.vol_mmf
        if state.vol_mmf > peak:
            peak, peak_model = state.vol_mmf, model_vol_mmf(var_model, p.z, p.horizon)
    assert peak == pytest.approx(peak_model, rel=1e-6)
    assert peak > 2 * pre_crash > 0
    bracket = adv_model.brackets(env, ETH)[0][1]
    assert peak > bracket  # the crash lifts the requirement above the bracket's fraction

    # after it: the price stays where it is, time passes; sigma decays as e^(-T / (2 tau))
    var0 = env.engine.market_state(ETH).variance
    t = chain.blocks.head.timestamp
    flat = answer(round(answers[-1].price, FEED_DECIMALS))
    for hour in range(1, 13):
        publish_and_poke(env, chain, trader, t + 3600 * hour, flat)
        want = var0 * math.exp(-3600 * hour / p.tau)
        assert env.engine.market_state(ETH).variance == pytest.approx(want, rel=1e-9, abs=2 * hour)
    assert env.engine.market_state(ETH).vol_mmf < pre_crash + (peak - pre_crash) // 10


def raise_vol(env, chain, who, moves=6):
    """Back and forth 5% moves, a minute apart, ending at the start price."""
    t = chain.blocks.head.timestamp
    start = env.engine.price(ETH) // 10 ** (18 - FEED_DECIMALS)
    for k in range(1, moves + 1):
        ans = start * 95 // 100 if k % 2 else start
        publish_and_poke(env, chain, who, t + 60 * k, ans)


def test_frequent_pokes_decay_no_faster_than_time(adv, chain, trader):
    env = adv
    raise_vol(env, chain, trader)
    t0 = chain.blocks.head.timestamp
    var0 = env.engine.market_state(ETH).variance
    assert var0 > 0
    T = 3000  # within the feed's heartbeat: no new answer needed
    snap = chain.snapshot()
    chain.pending_timestamp = t0 + T
    env.engine.poke(ETH, sender=trader)
    once = env.engine.market_state(ETH).variance
    chain.restore(snap)
    for k in range(1, 21):
        chain.pending_timestamp = t0 + T * k // 20
        env.engine.poke(ETH, sender=trader)
    assert chain.blocks.head.timestamp == t0 + T
    many = env.engine.market_state(ETH).variance
    assert once == pytest.approx(var0 * math.exp(-T / env.engine.market(ETH).params.tau), rel=1e-9)
    assert abs(many - once) <= 20  # a few wei of rounding per poke, no more
    assert many >= once - 20


def test_requirement_follows_vol_and_can_liquidate_without_governance(adv, chain, trader):
    env = adv
    env.fund(trader, 2_100)
    env.trade(trader, ETH, 10)  # 20,000 notional; needs 1,000 at the 5% bracket
    before = env.engine.health(trader)
    assert not before.liquidatable and before.maintenance_req == adv_model.unit_health(env, trader, env.engine.collateral(trader), [ETH])[1]
    params, brackets = env.engine.market(ETH).params, env.config.brackets(ETH)
    raise_vol(env, chain, trader, moves=8)
    state = env.engine.market_state(ETH)
    h = env.engine.health(trader)
    equity, mm, _ = adv_model.unit_health(env, trader, env.engine.collateral(trader), [ETH])
    assert state.vol_mmf > brackets[0].mmf
    assert (h.equity, h.maintenance_req) == (equity, mm)
    assert mm > before.maintenance_req
    assert h.liquidatable and h.equity < h.maintenance_req
    assert env.engine.market(ETH).params == params and env.config.brackets(ETH) == brackets


def test_a_move_inside_one_block_still_counts(adv, chain, trader):
    """A price read at the same timestamp as the last touch must not erase the move it brings:
    touch at P0, the feed answers P1 in the same block, touch again, then time passes with P1
    unchanged. The move P0 -> P1 happened and must show in sigma, as it does when the second
    touch comes one second later."""
    env = adv
    results = []
    for gap in (1, 0):
        snap = chain.snapshot()
        t = chain.blocks.head.timestamp + 10
        chain.pending_timestamp = t
        env.engine.poke(ETH, sender=trader)
        publish_and_poke(env, chain, trader, t + gap, answer(1_900))
        chain.pending_timestamp = t + 60
        env.engine.poke(ETH, sender=trader)
        results.append(env.engine.market_state(ETH).variance)
        chain.restore(snap)
    one_second_later, same_block = results
    assert one_second_later > 0
    assert same_block > 0, "a 5% move read in the block of the previous touch left sigma at zero"
