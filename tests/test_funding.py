"""Funding (DESIGN 4): the market's funding index against an independent computation over random
sequences of trades, time and prices; every settlement against the positions' entries; and
conservation: what payers pay is what receivers get plus the pool's share, the pool's share
measured from token flows alone."""

from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ETH, FEED_DECIMALS, WAD

DAY = 86400
LIMIT_UP, LIMIT_DOWN = 2**256 - 1, 0


def ceil_div(a, b):
    return -((-a) // b)


def trunc_div(a, b):
    """Integer division toward zero (the rate is symmetric in the skew's sign)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class FundingModel:
    """The index: F += floor(rate * P * dt / (WAD * DAY)) at each touch, the rate
    clamp(skew / skew_scale, -1, 1) * max_funding_rate per day under the skew since the last touch."""

    def __init__(self, skew_scale, max_rate, t):
        self.scale, self.max_rate = skew_scale, max_rate
        self.index, self.t, self.skew = 0, t, 0

    def rate(self):
        frac = max(min(trunc_div(self.skew * WAD, self.scale), WAD), -WAD)
        return trunc_div(frac * self.max_rate, WAD)

    def at(self, t, price):
        return self.index + (self.rate() * price * (t - self.t)) // (WAD * DAY)

    def touch(self, t, price):
        self.index, self.t = self.at(t, price), t


def pool_value(env):
    return env.token.balanceOf(env.pool.address) * env.scale + env.engine.pool_owed()


def answer(usd):
    return int(Decimal(usd) * 10**FEED_DECIMALS)


def run(env, chain, accounts, ops):
    """Plays ops with explicit block times; checks the index after every step and every
    settlement against the model. Returns the Trade events."""
    p = env.engine.market(ETH).params
    t = chain.blocks.head.timestamp + 5
    chain.pending_timestamp = t
    env.engine.poke(ETH, sender=accounts[0])
    m = FundingModel(p.skew_scale, p.max_funding_rate, t)
    price = env.engine.price(ETH)
    sizes, entries, logs = [0] * len(accounts), [0] * len(accounts), []

    def trade(i, delta):
        nonlocal t
        t += 1
        chain.pending_timestamp = t
        tx = env.engine.trade(ETH, delta, LIMIT_UP if delta > 0 else LIMIT_DOWN, sender=accounts[i])
        m.touch(t, price)
        [log] = tx.decode_logs(env.engine.Trade)
        assert log.funding == ceil_div(sizes[i] * (m.index - entries[i]), WAD)
        sizes[i] += delta
        entries[i] = m.index
        m.skew += delta
        logs.append(log)

    for op in ops + [("close", i, 0) for i in range(len(accounts))]:
        kind, a, b = op
        if kind == "trade":
            trade(a, b * WAD)
        elif kind == "close" and sizes[a] != 0:
            trade(a, -sizes[a])
        elif kind in ("wait", "price"):
            t += a if kind == "wait" else 1
            if kind == "price":
                price = price * (1000 + b) // 1000 // 10**10 * 10**10
            chain.pending_timestamp = t
            env.feeds[ETH].set_answer(price // 10 ** (18 - FEED_DECIMALS), sender=env.deployer)
        assert chain.blocks.head.timestamp == t
        assert env.engine.market_state(ETH).funding_index == m.at(t, price)
    assert m.skew == 0 and env.engine.market_state(ETH).funding_rate == 0
    return logs


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("trade"), st.integers(0, 2), st.integers(-40, 40).filter(lambda x: x != 0)),
        st.tuples(st.just("wait"), st.integers(1, 3_000), st.just(0)),
        st.tuples(st.just("price"), st.just(0), st.integers(-50, 50)),
    ),
    min_size=3,
    max_size=7,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=OPS)
def test_index_settlements_and_conservation(adv, chain, traders, ops):
    env = adv
    accounts = traders[:3]
    snap = chain.snapshot()
    try:
        for a in accounts:
            env.fund(a, 1_000_000)
        pool_before = pool_value(env)
        logs = run(env, chain, accounts, ops)
        paid = sum(log.funding for log in logs if log.funding > 0)
        received = -sum(log.funding for log in logs if log.funding < 0)
        fees = sum(log.fee for log in logs)
        realized = sum(log.realized_pnl for log in logs)
        # the pool gains fees and funding and pays realized PnL: its funding share from token flows
        pool_share = pool_value(env) - pool_before - fees + realized
        assert paid == received + pool_share
        assert env.engine.insurance_fund() == 0
    finally:
        chain.restore(snap)


def test_heavy_side_pays(adv, chain, trader, trader2):
    env = adv
    env.fund(trader, 100_000)
    env.fund(trader2, 100_000)
    env.trade(trader, ETH, 20)
    env.trade(trader2, ETH, -5)  # skew +15: longs pay
    state = env.engine.market_state(ETH)
    p = env.engine.market(ETH).params
    assert state.funding_rate == 15 * WAD * p.max_funding_rate // p.skew_scale > 0
    chain.mine(timestamp=chain.blocks.head.timestamp + 3000)
    env.set_price(ETH, 2_000)
    before = pool_value(env)
    long_entry, short_entry = env.engine.position(trader, ETH).funding_entry, env.engine.position(trader2, ETH).funding_entry
    [a] = env.trade(trader, ETH, -20).decode_logs(env.engine.Trade)
    [b] = env.trade(trader2, ETH, 5).decode_logs(env.engine.Trade)
    f_a, f_b = env.engine.position(trader, ETH).funding_entry, env.engine.position(trader2, ETH).funding_entry
    assert a.funding == ceil_div(20 * (f_a - long_entry), 1) > 0  # the heavy side pays
    assert b.funding == ceil_div(-5 * (f_b - short_entry), 1) < 0  # the light side receives
    assert a.funding > -b.funding  # and the pool, short the skew, keeps the rest
    assert pool_value(env) - before == a.fee + b.fee - a.realized_pnl - b.realized_pnl + a.funding + b.funding
