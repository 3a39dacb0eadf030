"""A stateful hypothesis machine over the protocol on anvil: random sequences of deposits,
withdrawals, trades, closes, price jumps, time, LP moves, insurance and liquidations, with the
protocol's invariants checked after every step. Each example snapshots the chain and restores it.

Examples and steps: FUZZ_STATEFUL_EXAMPLES (default 25) x FUZZ_STATEFUL_STEPS (default 30);
`make fuzz` runs the long profile."""

import os
from decimal import Decimal

from ape.exceptions import ContractLogicError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import model
from helpers import BTC, ETH, WAD, assert_solvent
from test_liquidation import model_market

EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "25"))
STEPS = int(os.environ.get("FUZZ_STATEFUL_STEPS", "30"))
MARKETS = (ETH, BTC)
START = {ETH: 2000, BTC: 60000}
MAX_UINT = 2**256 - 1

# reasons an action may legitimately be refused with; anything else fails the example
ALLOWED = {
    "engine: insufficient margin",
    "engine: insufficient collateral",
    "engine: position too small",
    "engine: account underwater",
    "engine: open interest cap",
    "engine: pool exposure",
    "engine: not liquidatable",
    "pool: reserved",
    "pool: exceeds balance",
}


def refused(err: ContractLogicError) -> str:
    reason = str(err.message if hasattr(err, "message") else err)
    assert any(r in reason for r in ALLOWED), f"unexpected revert: {reason}"
    return reason


class Protocol(RuleBasedStateMachine):
    """The machine; `bind` gives it the deployment before hypothesis runs it."""

    env = chain = traders = lp = keeper = params = None

    @initialize()
    def start(self):
        self.snapshot = self.chain.snapshot()
        self.prices = dict(START)

    def teardown(self):
        if hasattr(self, "snapshot"):
            self.chain.restore(self.snapshot)

    # helpers

    def healths(self):
        addresses = [t.address for t in self.traders]
        return dict(zip(addresses, (tuple(h) for h in self.env.engine.healths(addresses))))

    def others_unchanged(self, actor, before):
        after = self.healths()
        for a, h in before.items():
            if a != actor.address:
                assert after[a] == h, "one account's action changed another account's health"

    def set_price(self, market, usd):
        self.prices[market] = usd
        self.env.set_price(market, usd)

    # rules

    @rule(i=st.integers(0, 3), usd=st.integers(1, 50_000))
    def deposit(self, i, usd):
        t = self.traders[i]
        before = self.healths()
        self.env.engine.deposit(self.env.units(usd), sender=t)
        self.others_unchanged(t, before)

    @rule(i=st.integers(0, 3), share=st.integers(1, 100))
    def withdraw(self, i, share):
        t = self.traders[i]
        coll = self.env.engine.collateral(t.address)
        amount = max(coll, 0) // self.env.scale * share // 100
        if amount == 0:
            return
        before = self.healths()
        try:
            self.env.engine.withdraw(amount, sender=t)
        except ContractLogicError as e:
            refused(e)
            assert self.healths() == before
            return
        h = self.env.engine.health(t.address)
        assert self.env.engine.position_mask(t.address) == 0 or h.equity >= h.initial_req
        self.others_unchanged(t, before)

    @rule(i=st.integers(0, 3), market=st.sampled_from(MARKETS), usd=st.integers(-300_000, 300_000))
    def trade(self, i, market, usd):
        if usd == 0:
            return
        t = self.traders[i]
        delta = int(usd * WAD // self.prices[market])
        if delta == 0:
            return
        before = self.healths()
        try:
            self.env.engine.trade(market, delta, MAX_UINT if delta > 0 else 0, sender=t)
        except ContractLogicError as e:
            refused(e)
            assert self.healths() == before
            return
        self.others_unchanged(t, before)

    @rule(i=st.integers(0, 3), market=st.sampled_from(MARKETS))
    def close(self, i, market):
        t = self.traders[i]
        size = self.env.engine.position(t.address, market).size
        if size == 0:
            return
        try:
            self.env.engine.trade(market, -size, MAX_UINT if size < 0 else 0, sender=t)
        except ContractLogicError as e:
            assert "engine: account underwater" in refused(e)  # the only reason a close may fail
            return
        assert self.env.engine.position(t.address, market).size == 0

    @rule(i=st.integers(0, 3), market=st.sampled_from(MARKETS), usd=st.integers(2_000, 100_000))
    def open_close_never_profits(self, i, market, usd):
        t = self.traders[i]
        if self.env.engine.position(t.address, market).size != 0:
            return
        delta = int(usd * WAD // self.prices[market])
        coll = self.env.engine.collateral(t.address)
        try:
            self.env.engine.trade(market, delta, MAX_UINT, sender=t)
        except ContractLogicError as e:
            refused(e)
            return
        self.env.engine.trade(market, -delta, 0, sender=t)
        assert self.env.engine.collateral(t.address) <= coll

    @rule(market=st.sampled_from(MARKETS), move=st.integers(-300, 300))
    def move_price(self, market, move):
        usd = max(Decimal(self.prices[market]) * (1000 + move) / 1000, Decimal(1))
        self.set_price(market, usd)

    @rule(seconds=st.integers(1, 7200))
    def pass_time(self, seconds):
        self.chain.mine(timestamp=self.chain.pending_timestamp + seconds)
        for m in MARKETS:  # the feeds keep answering (heartbeat), at the same price
            self.set_price(m, self.prices[m])

    @rule(i=st.integers(0, 3))
    def liquidate(self, i):
        t = self.traders[i]
        h = self.env.engine.health(t.address)
        if not h.liquidatable:
            try:
                self.env.engine.liquidate(t.address, sender=self.keeper)
            except ContractLogicError as e:
                assert "engine: not liquidatable" in refused(e)
                return
            raise AssertionError("a healthy account was liquidated")
        before = self.healths()
        tx = self.env.engine.liquidate(t.address, sender=self.keeper)
        self.check_after_liquidation(t, tx)
        self.others_unchanged(t, before)

    @rule(i=st.integers(0, 3))
    def liquidate_self_never_profits(self, i):
        t = self.traders[i]
        h = self.env.engine.health(t.address)
        if not h.liquidatable or h.equity <= 0:
            return
        tokens = self.env.token.balanceOf(t.address)
        tx = self.env.engine.liquidate(t.address, sender=t)
        gained = (self.env.token.balanceOf(t.address) - tokens) * self.env.scale
        assert self.env.engine.health(t.address).equity + gained <= h.equity
        self.check_after_liquidation(t, tx)

    @rule()
    def liquidate_many(self):
        listed = self.env.engine.liquidatable_accounts(0, 100)
        tx = self.env.engine.liquidate_many([t.address for t in self.traders], sender=self.keeper)
        count, _ = tx.return_value
        assert count == len(listed)
        assert self.env.engine.liquidatable_accounts(0, 100) == []

    @rule(usd=st.integers(1, 200_000))
    def lp_deposit(self, usd):
        self.env.pool.deposit(self.env.units(usd), sender=self.lp)

    @rule(share=st.integers(1, 100))
    def lp_withdraw(self, share):
        amount = self.env.pool.maxWithdraw(self.lp.address) * share // 100
        if amount:
            self.env.pool.withdraw(amount, sender=self.lp)

    @rule(usd=st.integers(1, 5_000))
    def fund_insurance(self, usd):
        self.env.engine.fund_insurance(self.env.units(usd), sender=self.keeper)

    def check_after_liquidation(self, t, tx):
        after = self.env.engine.health(t.address)
        mask = self.env.engine.position_mask(t.address)
        if mask:
            target = self.env.config.liquidation_params().liq_target
            assert after.equity >= model.ceil_div(target * after.maintenance_req, WAD)
        for bd in tx.decode_logs(self.env.engine.BadDebt):
            # bad debt only once collateral is exhausted and nothing is left open
            assert mask == 0 and self.env.engine.collateral(t.address) == 0
            assert bd.insurance_paid + bd.pool_written_off == bd.amount

    # invariants

    @invariant()
    def solvent(self):
        if self.env is not None and hasattr(self, "snapshot"):
            assert_solvent(self.env)

    @invariant()
    def books_balance(self):
        if not hasattr(self, "snapshot"):
            return
        e = self.env.engine
        prices = {m: e.price(m) for m in MARKETS}
        listed = {e.account_at(k) for k in range(e.n_accounts())}
        holders, flagged = set(), set()
        oi = {m: [0, 0] for m in MARKETS}
        healths = self.healths()
        for t in self.traders:
            mask = e.position_mask(t.address)
            positions = []
            for m in MARKETS:
                p = e.position(t.address, m)
                assert bool(mask >> m & 1) == (p.size != 0)
                oi[m][0] += max(p.size, 0)
                oi[m][1] += max(-p.size, 0)
                if p.size:
                    holders.add(t.address)
                    positions.append(model.Pos(p.size, p.cost, prices[m], self.params[m]))
            # the health view equals the model
            want = model.account_health(e.collateral(t.address), positions)
            assert healths[t.address] == (want.equity, want.initial_req, want.maintenance_req, want.liquidatable)
            if want.liquidatable:
                flagged.add(t.address)
        for m in MARKETS:
            mk = e.market(m)
            assert [mk.oi_long, mk.oi_short] == oi[m], "open interest differs from the positions"
        assert listed == holders, "account list differs from the accounts holding a position"
        assert set(e.liquidatable_accounts(0, 100)) == flagged


def test_protocol_state_machine(env, chain, traders, lp, liquidator):
    for t in traders:
        env.mint(t, 10_000_000)
        env.token.approve(env.engine.address, MAX_UINT, sender=t)
        env.touched.add(t.address)
    env.mint(lp, 10_000_000)
    env.token.approve(env.pool.address, MAX_UINT, sender=lp)
    env.mint(liquidator, 1_000_000)
    env.token.approve(env.engine.address, MAX_UINT, sender=liquidator)
    Protocol.env, Protocol.chain, Protocol.traders, Protocol.lp, Protocol.keeper = env, chain, traders, lp, liquidator
    Protocol.params = {m: model_market(env, m) for m in MARKETS}  # constant: no rule changes them
    runner = Protocol.TestCase
    runner.settings = settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    runner().runTest()
    print(f"stateful: {EXAMPLES} examples of up to {STEPS} steps")
