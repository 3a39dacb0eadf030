"""The stateful hypothesis machine over Ballast.

Each rule is one protocol action (or a short sequence, like a round trip) with its own checks
against the model; after every step the invariants of `fuzz.invariants.INVARIANTS` run on the state
read back from the chain. Every example starts from one chain snapshot and reverts to it.

To add an action: a method in `fuzz.protocol.Protocol`, a prediction in `fuzz.predict` if the model
covers it, and a rule here that calls `begin` (naming the accounts it acts for), `send`, `observe`
and its checks. To add an invariant: a function in `fuzz.invariants`, listed in `INVARIANTS`. A
step that moves every account's health (a price, or funding once time accrues it) passes
`prices_moved=True`, which lifts the check that other accounts are untouched.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from fuzz import predict
from fuzz.invariants import (
    INVARIANTS,
    Step,
    events,
    liquidations_are_sound,
    liquidations_match_model,
    refusal_expected,
    trade_matches,
)
from fuzz.protocol import Protocol
from fuzz.rpc import Reverted

WAD = 10**18
N_TRADERS = 4
N_MARKETS = 2
MARKET_NAMES = ("ETH", "BTC")
FEED_DECIMALS = 8

# name: (examples, steps per example)
PROFILES = {"ci": (100, 30), "long": (2000, 50)}


def profile() -> tuple[str, int, int]:
    """The profile named by BALLAST_FUZZ (default ci); BALLAST_FUZZ_EXAMPLES and _STEPS override."""
    name = os.environ.get("BALLAST_FUZZ", "ci")
    if name not in PROFILES:
        raise ValueError(f"BALLAST_FUZZ={name!r}: expected one of {sorted(PROFILES)}")
    examples, steps = PROFILES[name]
    examples = int(os.environ.get("BALLAST_FUZZ_EXAMPLES", examples))
    steps = int(os.environ.get("BALLAST_FUZZ_STEPS", steps))
    return name, examples, steps


@dataclass
class Stats:
    """What a run did, for the report."""

    examples: int = 0
    steps: int = 0
    full_length: int = 0  # examples that ran every step the profile allows
    seconds: float = 0.0
    requests: int = 0  # JSON-RPC round trips
    rules: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)  # (rule, "ok" / "refused: reason" / "no-op")
    liquidations: Counter = field(default_factory=Counter)

    def report(self, title: str) -> str:
        per_step = 1000 * self.seconds / max(self.steps, 1)
        lines = [
            f"{title}: {self.examples} examples ({self.full_length} of full length), {self.steps} steps, "
            f"{self.seconds:.1f} s ({per_step:.2f} ms per step, setup and invariants included), "
            f"{self.requests} JSON-RPC requests ({self.requests / max(self.steps, 1):.1f} per step)"
        ]
        for r in sorted(self.rules):
            parts = [f"{what} {n}" for (rr, what), n in sorted(self.outcomes.items()) if rr == r]
            lines.append(f"  {r:<16} {self.rules[r]:>7}   " + ", ".join(parts))
        liq = ", ".join(f"{k} {v}" for k, v in sorted(self.liquidations.items()))
        lines.append(f"  liquidations: {liq or 'none'}")
        return "\n".join(lines)


@dataclass
class World:
    """What every example shares: the protocol client, the feeds' starting answers, the stats."""

    protocol: Protocol
    answers: list[int]
    max_steps: int = 0
    stats: Stats = field(default_factory=Stats)


def fmt(wad: int) -> str:
    """A WAD amount for humans."""
    return f"{wad / WAD:+,.6g}"


def to_size(usd_wad: int, price: int) -> int:
    """Base units worth `usd_wad` at `price`, signed like it, rounded toward zero."""
    size = abs(usd_wad) * WAD // price
    return size if usd_wad >= 0 else -size


TRADER = st.integers(0, N_TRADERS - 1)
MARKET = st.integers(0, N_MARKETS - 1)
# per mille of what free margin allows; often close to the limit, where liquidations come from
LEVERAGE = st.one_of(st.integers(-1000, 1000), st.integers(850, 1000), st.integers(-1000, -850))


class BallastMachine(RuleBasedStateMachine):
    def __init__(self, world: World):
        super().__init__()
        self.w = world
        self.p = world.protocol
        self.c = self.p.constants
        d = self.p.d
        self.traders, self.keeper, self.lp = d.traders, d.keeper, d.lp
        self.label = {a: f"t{i}" for i, a in enumerate(d.traders)} | {d.keeper: "keeper", d.lp: "lp"}
        self.unit = WAD // self.c.scale  # token units per dollar
        world.stats.examples += 1
        self.steps = 0
        self.snapshot = self.p.node.snapshot()
        self.answers = list(world.answers)
        self.sent: list[Any] = []
        self.step = Step("start")
        self.refresh_feeds()  # the chain's clock moves on between examples: answers are fresh
        self.observe()
        self.before = self.state

    def teardown(self) -> None:
        self.p.node.revert(self.snapshot)
        self.w.stats.full_length += self.steps == self.w.max_steps

    # -- plumbing ---------------------------------------------------------------------------

    def begin(self, name: str, *actors: str, prices_moved: bool = False) -> None:
        self.before = self.state
        self.step = Step(name, frozenset(actors), prices_moved)
        self.steps += 1
        self.w.stats.steps += 1
        self.w.stats.rules[name] += 1

    def send(self, action: Any, *args: Any) -> Any:
        """The mined transaction, or the Reverted of its simulation (then nothing was sent)."""
        try:
            sent = action(*args)
        except Reverted as r:
            return r
        self.sent.append(sent)
        return sent

    def must(self, out: Any) -> Any:
        assert not isinstance(out, Reverted), f"{self.step.name}: unexpected revert: {out.reason}"
        return out

    def observe(self) -> None:
        """Reads the state after what was sent since the last read."""
        if self.sent:
            self.state = self.p.read()
            self.sent = []

    def outcome(self, what: str, text: str) -> None:
        self.w.stats.outcomes[(self.step.name, text.split(" (")[0])] += 1
        note(f"    step {self.steps}: {what}: {text}")

    def refresh_feeds(self) -> None:
        for m, answer in enumerate(self.answers):
            self.must(self.send(self.p.set_answer, m, answer))

    def trade(self, t: str, m: int, delta: int, limit: int | None = None) -> predict.Trade | None:
        """Trades (within `limit`, if any) and checks the result against the model; None when
        refused (as predicted)."""
        what = f"{self.label[t]} trade {MARKET_NAMES[m]} {fmt(delta)}" + (f" limit {fmt(limit)}" if limit else "")
        pred = predict.trade(self.state, self.c, t, m, delta, limit)
        out = self.send(self.p.trade, t, m, delta, limit)
        if isinstance(out, Reverted):
            refusal_expected(out.reason, pred.refusals, what)
            self.outcome(what, f"refused: {out.reason}")
            return None
        assert not pred.refusals, f"{what}: the engine accepted, the model refuses: {sorted(pred.refusals)}"
        self.observe()
        trade_matches(pred, out, self.state, t, m, delta)
        self.step.pool_gain += pred.pool_gain
        self.outcome(what, f"ok (fill {fmt(pred.fill)}, fee {fmt(pred.fee)}, realized {fmt(pred.realized)}, size {fmt(pred.new_size)})")
        return pred

    def leveraged_size(self, t: str, m: int, lev_permille: int) -> int:
        """A size of `lev_permille` / 1000 of what the account's free margin could open in market m."""
        h = self.state.accounts[t].health
        p = self.state.markets[m].params
        rate = max(p.imf, self.c.mmf[m] * p.im_multiplier // WAD)
        free = max(h.equity - h.initial_req, 0)
        return to_size(free * WAD // rate * lev_permille // 1000, self.state.prices[m])

    def liquidate_accounts(self, caller: str, accounts: list[str], many: bool) -> Any:
        """Liquidates, checks against the model and the rules; the mined call, or None when a
        single liquidation was refused (as it must be for a healthy account)."""
        what = f"{self.label[caller]} liquidate{'_many' if many else ''} {[self.label[a] for a in accounts]}"
        pred = predict.liquidations(self.state, self.c, accounts)
        tokens = self.state.accounts[caller].tokens
        self.step.actors = frozenset({caller, *(d.account for d in pred.done)})
        if many:
            out = self.send(self.p.liquidate_many, caller, accounts)
        else:
            out = self.send(self.p.liquidate, caller, accounts[0])
            if not pred.done:  # healthy: must revert with the reason
                assert isinstance(out, Reverted), f"{what}: a healthy account was liquidated"
                assert out.reason == "engine: not liquidatable", f"{what}: refused with {out.reason!r}"
                self.outcome(what, "refused: engine: not liquidatable")
                return None
        self.must(out)
        self.observe()
        liquidations_are_sound(self.c, out, self.before, self.state)
        liquidations_match_model(self.c, pred, out, self.state, caller, tokens)
        want = (len(pred.done), pred.reward_paid) if many else pred.reward_paid
        assert out.value == want, f"{what} returned {out.value}, model {want}"
        self.step.pool_gain = pred.pool_gain
        stats = self.w.stats.liquidations
        for d in pred.done:
            r = d.result
            stats["full" if r.full else "partial"] += 1
            stats["bad debt"] += r.bad_debt > 0
            stats["insurance shortfall"] += r.reward_shortfall > 0
        stats["pool shortfall"] += len(events([out], "PoolShortfall"))
        self.outcome(what, f"ok ({len(pred.done)} liquidated, reward {fmt(pred.reward)})")
        return out

    # -- rules ------------------------------------------------------------------------------

    @initialize(book=st.lists(st.tuples(st.integers(0, 100_000), MARKET, LEVERAGE), min_size=N_TRADERS, max_size=N_TRADERS))
    def open_book(self, book: list[tuple[int, int, int]]) -> None:
        """Each trader deposits and opens a position of up to its full leverage: (usd, market, lev
        per mille of its free margin's worth)."""
        self.begin("open_book", *self.traders)
        for t, (usd, m, lev) in zip(self.traders, book):
            if usd:
                self.deposit_checked(t, t, usd)
                delta = self.leveraged_size(t, m, lev)
                if delta:
                    self.trade(t, m, delta)

    def deposit_checked(self, sender: str, t: str, usd: int) -> None:
        before = self.state
        amount = usd * self.unit
        self.must(self.send(self.p.deposit, sender, amount, t))
        self.observe()
        assert self.state.accounts[t].collateral == before.accounts[t].collateral + amount * self.c.scale
        assert self.state.accounts[sender].tokens == before.accounts[sender].tokens - amount
        self.outcome(f"{self.label[sender]} deposit {usd} for {self.label[t]}", "ok")

    @rule(i=TRADER, usd=st.integers(1, 100_000), by_keeper=st.booleans())
    def deposit(self, i: int, usd: int, by_keeper: bool) -> None:
        t = self.traders[i]
        sender = self.keeper if by_keeper else t
        self.begin("deposit", t, sender)
        self.deposit_checked(sender, t, usd)

    @rule(i=TRADER, pct=st.integers(1, 120))
    def withdraw(self, i: int, pct: int) -> None:
        t = self.traders[i]
        self.begin("withdraw", t)
        acc = self.state.accounts[t]
        amount = max(acc.collateral, 0) // self.c.scale * pct // 100
        what = f"{self.label[t]} withdraw {amount / self.unit:,.2f}"
        if amount == 0:
            return self.outcome(what, "no-op")
        refusals = predict.withdraw(self.state, self.c, t, amount)
        out = self.send(self.p.withdraw, t, amount)
        if isinstance(out, Reverted):
            refusal_expected(out.reason, refusals, what)
            return self.outcome(what, f"refused: {out.reason}")
        assert not refusals, f"{what}: the engine accepted, the model refuses: {refusals}"
        self.observe()
        after = self.state.accounts[t]
        assert after.collateral == acc.collateral - amount * self.c.scale
        assert after.tokens == acc.tokens + amount
        assert after.mask == 0 or after.health.equity >= after.health.initial_req
        self.outcome(what, "ok")

    @rule(i=TRADER, m=MARKET, usd=st.integers(-300_000, 300_000), limit_bps=st.one_of(st.none(), st.integers(-50, 50)))
    def trade_usd(self, i: int, m: int, usd: int, limit_bps: int | None) -> None:
        """Any trade of a dollar size: opens, increases, reduces, flips or closes; with limit_bps,
        the acceptable price is the oracle price moved by that many basis points."""
        t = self.traders[i]
        self.begin("trade_usd", t)
        price = self.state.prices[m]
        delta = to_size(usd * WAD, price)
        if delta == 0:
            return self.outcome(f"{self.label[t]} trade 0", "no-op")
        self.trade(t, m, delta, None if limit_bps is None else price * (10_000 + limit_bps) // 10_000)

    @rule(i=TRADER, m=MARKET, lev=st.one_of(LEVERAGE, st.integers(-1500, 1500)))
    def trade_leveraged(self, i: int, m: int, lev: int) -> None:
        """A trade sized on the account's free margin, up to 1.5 x what it allows."""
        t = self.traders[i]
        self.begin("trade_leveraged", t)
        delta = self.leveraged_size(t, m, lev)
        if delta == 0:
            return self.outcome(f"{self.label[t]} trade 0", "no-op")
        self.trade(t, m, delta)

    @rule(i=TRADER, m=MARKET, pct=st.one_of(st.integers(1, 99), st.integers(101, 300), st.just(100)))
    def reduce_flip_close(self, i: int, m: int, pct: int) -> None:
        """Trades against the position: pct < 100 reduces, 100 closes, > 100 flips."""
        t = self.traders[i]
        self.begin("reduce_flip_close", t)
        size = self.state.accounts[t].positions[m].size
        delta = -size if pct == 100 else -(abs(size) * pct // 100) * (1 if size > 0 else -1)
        if delta == 0:
            return self.outcome(f"{self.label[t]} reduce {MARKET_NAMES[m]}", "no-op")
        self.trade(t, m, delta)

    @rule(i=TRADER, m=MARKET, lev=st.integers(1, 1500), short=st.booleans())
    def round_trip(self, i: int, m: int, lev: int, short: bool) -> None:
        """Open (or add to the position) and take it back at once: equity never grows."""
        t = self.traders[i]
        self.begin("round_trip", t)
        held = self.state.accounts[t].positions[m].size
        delta = abs(self.leveraged_size(t, m, lev))
        if held < 0 or (held == 0 and short):
            delta = -delta
        if delta == 0:
            return self.outcome(f"{self.label[t]} round trip", "no-op")
        start = self.state.accounts[t]
        if self.trade(t, m, delta) is None or self.trade(t, m, -delta) is None:
            return
        end = self.state.accounts[t]
        assert end.health.equity <= start.health.equity, f"round trip gained {end.health.equity - start.health.equity}"
        if held == 0:
            assert end.collateral <= start.collateral, f"round trip gained {end.collateral - start.collateral}"

    @rule(m=MARKET, move=st.integers(-20, 20))
    def move_price(self, m: int, move: int) -> None:
        """A small move of a feed, by move / 1000."""
        self.set_price(m, self.answers[m] * (1000 + move) // 1000, "move_price")

    @rule(m=MARKET, move=st.one_of(st.integers(-300, 300), st.integers(-120, 120)))
    def jump_price(self, m: int, move: int) -> None:
        """A jump of up to 30% either way (often up to 12%, where partial liquidations are)."""
        self.set_price(m, self.answers[m] * (1000 + move) // 1000, "jump_price")

    @rule(depth=st.sampled_from([95, 80, 50, 5, 0, -30]))
    def shock(self, depth: int) -> None:
        """A jump aimed at the account nearest liquidation: its largest position's market moves (by
        30% at most) to where its equity would be `depth`% of its maintenance requirement."""
        held = [(a.health.equity / a.health.maintenance_req, t) for t, a in self.state.accounts.items() if a.mask]
        if not held:
            self.begin("shock", prices_moved=True)
            return self.outcome("shock", "no-op")
        t = min(held)[1]
        acc = self.state.accounts[t]
        m = max(range(N_MARKETS), key=lambda i: abs(acc.positions[i].size) * self.state.prices[i])
        size, price = acc.positions[m].size / WAD, self.state.prices[m] / WAD
        mmf = self.c.mmf[m] / WAD
        others = acc.health.maintenance_req / WAD - abs(size) * price * mmf
        # equity + size * (p - price) == k * (others + mmf * |size| * p), solved for p
        k = depth / 100
        den = size - k * mmf * abs(size)
        target = (k * others - acc.health.equity / WAD + size * price) / den if den else 0.0
        start = self.answers[m]
        answer = int(target * 10**FEED_DECIMALS) if target > 0 else 0
        adverse = start * 7 // 10 if size > 0 else start * 13 // 10
        answer = min(max(answer, start * 7 // 10), start * 13 // 10) if answer else adverse
        self.set_price(m, answer, f"shock on {self.label[t]}")

    def set_price(self, m: int, answer: int, why: str) -> None:
        self.begin(why.split()[0] if why.startswith("shock") else why, prices_moved=True)
        answer = max(answer, 10**FEED_DECIMALS)
        move = answer / self.answers[m] - 1
        self.must(self.send(self.p.set_answer, m, answer))
        self.answers[m] = answer
        self.observe()
        assert self.state.prices[m] == answer * 10 ** (18 - FEED_DECIMALS)
        self.outcome(f"{why}: {MARKET_NAMES[m]} price {answer / 10**FEED_DECIMALS:,.2f} ({100 * move:+.1f}%)", "ok")

    @rule(seconds=st.integers(1, 7200))
    def pass_time(self, seconds: int) -> None:
        """Time passes; the feeds answer again (their heartbeat) at the same prices."""
        self.begin("pass_time")
        self.p.node.increase_time(seconds)
        self.refresh_feeds()
        self.observe()
        self.outcome(f"{seconds} s pass", "ok")

    def pick(self, i: int, listed: bool) -> str:
        """Trader i, or with `listed` one that liquidatable_accounts lists, when there is one."""
        found = self.state.liquidatable
        return found[i % len(found)] if listed and found else self.traders[i]

    @rule(i=TRADER, listed=st.booleans())
    def liquidate(self, i: int, listed: bool) -> None:
        """The keeper liquidates a trader: a healthy one must refuse with the reason."""
        self.begin("liquidate")
        self.liquidate_accounts(self.keeper, [self.pick(i, listed)], many=False)

    @rule(i=TRADER, listed=st.booleans())
    def liquidate_self(self, i: int, listed: bool) -> None:
        """Liquidating yourself never pays while the account pays its penalty: the reward is at most
        what it paid, but for the floor (min_keeper_reward), which the insurance fund tops up."""
        t = self.pick(i, listed)
        self.begin("liquidate_self")
        start = self.state.accounts[t]
        sent = self.liquidate_accounts(t, [t], many=False)
        if sent is None or start.health.equity <= 0:
            return
        [ev] = events([sent], "Liquidation")
        end = self.state.accounts[t]
        gain = end.health.equity + (end.tokens - start.tokens) * self.c.scale - start.health.equity
        allowed = max(0, self.c.liquidation.min_keeper_reward - ev.penalty_paid)
        assert gain <= allowed, f"self-liquidation gained {gain} (equity {start.health.equity}, paid {ev.penalty_paid}, reward {ev.reward})"

    @rule()
    def keeper_sweep(self) -> None:
        """The keeper's pass: liquidate_many of what liquidatable_accounts lists."""
        self.liquidate_many([])

    @rule(extra=st.lists(TRADER, max_size=3))
    def liquidate_many(self, extra: list[int]) -> None:
        """Everything liquidatable_accounts lists, plus some others: the list is empty after."""
        self.begin("liquidate_many" if extra else "keeper_sweep")
        accounts = list(self.state.liquidatable) + [self.traders[i] for i in extra]
        if not accounts:
            return self.outcome("keeper sweep", "no-op")
        self.liquidate_accounts(self.keeper, accounts, many=True)
        assert self.state.liquidatable == [], f"still liquidatable: {self.state.liquidatable}"

    @rule(usd=st.integers(1, 500_000))
    def lp_deposit(self, usd: int) -> None:
        self.begin("lp_deposit", self.lp)
        amount = usd * self.unit
        out = self.must(self.send(self.p.lp_deposit, self.lp, amount))
        self.observe()
        self.step.pool_gain = amount * self.c.scale
        assert self.state.lp_shares == self.before.lp_shares + out.value
        self.outcome(f"lp deposit {usd}", "ok")

    @rule(pct=st.integers(1, 120), redeem=st.booleans())
    def lp_withdraw(self, pct: int, redeem: bool) -> None:
        """Withdraw (assets) or redeem (shares); refused past the LP's balance or the reserve."""
        self.begin("lp_redeem" if redeem else "lp_withdraw", self.lp)
        free = self.state.pool_free
        if redeem:
            shares = self.state.lp_shares * pct // 100
            assets = self.p.preview_redeem(shares)
            refusals = {"pool: exceeds balance"} if pct > 100 else {"pool: reserved"} if assets > free else set()
            out = self.send(self.p.lp_redeem, self.lp, shares) if shares else None
        else:
            owned = self.p.lp_max_assets()
            assets = owned * pct // 100
            refusals = {"pool: exceeds balance"} if assets > owned else {"pool: reserved"} if assets > free else set()
            out = self.send(self.p.lp_withdraw, self.lp, assets) if assets else None
        what = f"lp {self.step.name[3:]} {pct}% ({assets / self.unit:,.2f})"
        if out is None:
            return self.outcome(what, "no-op")
        if isinstance(out, Reverted):
            refusal_expected(out.reason, refusals, what)
            return self.outcome(what, f"refused: {out.reason}")
        assert not refusals, f"{what}: the pool paid out, expected {refusals}"
        self.observe()
        if redeem:
            assert out.value == assets
        self.step.pool_gain = -assets * self.c.scale
        assert self.state.accounts[self.lp].tokens == self.before.accounts[self.lp].tokens + assets
        self.outcome(what, "ok")

    @rule(usd=st.integers(1, 5_000))
    def fund_insurance(self, usd: int) -> None:
        self.begin("fund_insurance", self.keeper)
        amount = usd * self.unit
        self.must(self.send(self.p.fund_insurance, self.keeper, amount))
        self.observe()
        assert self.state.insurance == self.before.insurance + amount * self.c.scale
        self.outcome(f"keeper funds insurance {usd}", "ok")

    # -- after every step -------------------------------------------------------------------

    @invariant()
    def invariants_hold(self) -> None:
        for check in INVARIANTS:
            check(self.c, self.before, self.state, self.step)


def run(world: World, examples: int, steps: int, seed: int | None = None) -> None:
    """Runs the machine; raises with the shrunk failing example's steps on a failure."""

    def factory() -> BallastMachine:
        return BallastMachine(world)

    if seed is not None:
        factory = hypothesis.seed(seed)(factory)
    world.max_steps = steps
    started = time.perf_counter()
    requests = world.protocol.node.rpc.requests
    try:
        run_state_machine_as_test(
            factory,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                print_blob=True,
            ),
        )
    finally:
        world.stats.seconds += time.perf_counter() - started
        world.stats.requests += world.protocol.node.rpc.requests - requests
