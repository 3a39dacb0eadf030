"""The advanced-margin fuzz machine: isolated positions, margin moves, funding, the volatility
term, `poke`, and the risk timelock, on a deployment with config/local.yaml's brackets, z = 3 and
funding. It checks model-free invariants after every step (the cross-margin machine in
`fuzz.machine` compares every figure with the flat model; this one covers what that model does
not know):

- tokens: engine tokens * scale == sum(collateral) + sum(isolated margin) + insurance + pool_owed,
  with 0 <= pool_owed < scale; the pool's assets are its balance;
- open interest equals the positions, the account list the holders, masks the positions and
  their isolated bits;
- `liquidatable_accounts` equals the listed accounts whose health says liquidatable;
- the pool's exact gain in a step equals what the step's events say it gains: fees, minus price
  PnL realized, plus funding settled, minus write-offs, plus LP flows. So funding paid by one side
  is received by the other side plus the pool's share, to the wei;
- a liquidation of a healthy account or position reverts with "engine: not liquidatable"; after a
  cross liquidation the account's cross side is closed or at or above the target; an isolated
  liquidation never lowers the account's cross collateral or touches its other positions;
- after `liquidate_many` of everything listed, nothing is liquidatable.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from fuzz.invariants import events
from fuzz.protocol import Protocol, State
from fuzz.rpc import Reverted

WAD = 10**18
CROSS = 2**256 - 1
N_TRADERS = 4
TRADER = st.integers(0, N_TRADERS - 1)
MARKET = st.integers(0, 1)


@dataclass
class AdvancedWorld:
    protocol: Protocol
    answers: list[int]
    owner: str
    max_steps: int = 0
    stats: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    examples: int = 0


class AdvancedMachine(RuleBasedStateMachine):
    def __init__(self, world: AdvancedWorld):
        super().__init__()
        self.w = world
        self.p = world.protocol
        self.c = self.p.constants
        self.d = self.p.d
        self.traders = self.d.traders[:N_TRADERS]
        self.unit = WAD // self.c.scale
        world.examples += 1
        self.snapshot = self.p.node.snapshot()
        self.answers = list(world.answers)
        self.sent: list[Any] = []
        self.lp_flow = 0
        self.refresh_feeds()
        self.state = self.p.read()
        self.before = self.state

    def teardown(self) -> None:
        self.p.node.revert(self.snapshot)

    # -- plumbing ---------------------------------------------------------------------------

    def send(self, sender: str, to: str, abi: Any, name: str, *args: Any) -> Any:
        self.w.stats[name] += 1
        try:
            out = self.p._send(sender, to, abi, name, *args)
        except Reverted as r:
            self.w.stats[f"{name} refused"] += 1
            note(f"  {name}{args}: refused {r.reason}")
            return r
        self.sent.append(out)
        note(f"  {name}{args}: ok")
        return out

    def engine(self, sender: str, name: str, *args: Any) -> Any:
        return self.send(sender, self.d.engine, self.p.engine, name, *args)

    def refresh_feeds(self) -> None:
        for m, answer in enumerate(self.answers):
            out = self.send(self.d.feed_owner, self.d.feeds[m], self.p.feed, "set_answer", answer)
            assert not isinstance(out, Reverted)

    def begin(self) -> None:
        self.before = self.state
        self.sent = []
        self.lp_flow = 0

    # -- rules ------------------------------------------------------------------------------

    @initialize(
        book=st.lists(
            st.tuples(st.integers(1_000, 200_000), MARKET, st.integers(-95, 95), st.booleans()),
            min_size=N_TRADERS,
            max_size=N_TRADERS,
        )
    )
    def open_book(self, book: list[tuple[int, int, int, bool]]) -> None:
        """Each trader deposits and opens a position of up to 9.5x (tenths), cross or isolated
        with all its collateral as margin."""
        self.begin()
        for t, (usd, m, lev, isolated) in zip(self.traders, book):
            assert not isinstance(self.engine(t, "deposit", usd * self.unit), Reverted)
            size = usd * WAD * lev // 10 * WAD // self.state.prices[m]
            if size == 0:
                continue
            limit = 2**256 - 1 if size > 0 else 0
            if isolated:
                self.engine(t, "trade_isolated", m, size, limit, usd * self.unit)
            else:
                self.engine(t, "trade", m, size, limit)

    @rule(i=TRADER, m=MARKET, lev=st.integers(-20, 20), isolated=st.booleans(), margin_pct=st.integers(0, 100))
    def trade(self, i: int, m: int, lev: int, isolated: bool, margin_pct: int) -> None:
        """A trade of up to 20x the trader's collateral's worth (most are refused near the limit),
        cross or isolated with a share of its collateral moved into the margin."""
        self.begin()
        t = self.traders[i]
        coll = max(self.state.accounts[t].collateral, 0)
        size = coll * lev // 2 * WAD // self.state.prices[m]
        if size == 0:
            size = WAD // 1000
        if isolated:
            margin = coll // self.c.scale * margin_pct // 100
            self.engine(t, "trade_isolated", m, size, 2**256 - 1 if size > 0 else 0, margin)
        else:
            self.engine(t, "trade", m, size, 2**256 - 1 if size > 0 else 0)

    @rule(i=TRADER, m=MARKET, pct=st.integers(1, 100))
    def close(self, i: int, m: int, pct: int) -> None:
        self.begin()
        t = self.traders[i]
        pos = self.state.accounts[t].positions[m]
        if pos.size == 0:
            return
        delta = -pos.size * pct // 100 or -pos.size
        limit = 2**256 - 1 if delta > 0 else 0
        if pos.isolated:
            self.engine(t, "trade_isolated", m, delta, limit, 0)
        else:
            self.engine(t, "trade", m, delta, limit)

    @rule(i=TRADER, m=MARKET, usd=st.integers(1, 50_000), add=st.booleans())
    def move_margin(self, i: int, m: int, usd: int, add: bool) -> None:
        self.begin()
        t = self.traders[i]
        self.engine(t, "add_isolated_margin" if add else "remove_isolated_margin", m, usd * self.unit)

    @rule(i=TRADER, usd=st.integers(1, 100_000))
    def withdraw(self, i: int, usd: int) -> None:
        self.begin()
        self.engine(self.traders[i], "withdraw", usd * self.unit)

    @rule(m=MARKET, bps=st.one_of(st.integers(-300, 300), st.integers(-3000, 3000)), seconds=st.integers(1, 3600))
    def move_price(self, m: int, bps: int, seconds: int) -> None:
        """A price move (up to 30%) some time later; the keeper pokes the market."""
        self.begin()
        self.p.node.increase_time(seconds)
        self.answers[m] = max(self.answers[m] * (10_000 + bps) // 10_000, 1)
        self.refresh_feeds()
        self.engine(self.d.keeper, "poke", m)

    @rule(m=MARKET, bps=st.one_of(st.integers(-3000, -300), st.integers(300, 3000)), seconds=st.integers(1, 600))
    def crash(self, m: int, bps: int, seconds: int) -> None:
        """A jump, then the keeper liquidates what is listed, cross and isolated alike."""
        self.move_price(m, bps, seconds)
        self.state = self.p.read()
        self.liquidate_everything()

    @rule(seconds=st.integers(60, 86_400))
    def pass_time(self, seconds: int) -> None:
        self.begin()
        self.p.node.increase_time(seconds)
        self.refresh_feeds()

    @rule(i=TRADER)
    def liquidate(self, i: int) -> None:
        self.begin()
        t = self.traders[i]
        acc = self.state.accounts[t]
        cross = [p for p in acc.positions if p.size != 0 and not p.isolated]
        out = self.engine(self.d.keeper, "liquidate", t)
        self.check_liquidation(t, out, CROSS, bool(cross))

    @rule(i=TRADER, m=MARKET)
    def liquidate_isolated(self, i: int, m: int) -> None:
        self.begin()
        t = self.traders[i]
        out = self.engine(self.d.keeper, "liquidate_isolated", t, m)
        self.check_liquidation(t, out, m, self.state.accounts[t].positions[m].isolated)

    @rule()
    def liquidate_everything(self) -> None:
        self.begin()
        listed = list(self.state.liquidatable)
        if not listed:
            return
        out = self.engine(self.d.keeper, "liquidate_many", listed)
        assert not isinstance(out, Reverted), f"liquidate_many reverted: {out.reason}"
        self.observe()
        assert self.state.liquidatable == [], f"still liquidatable after liquidate_many: {self.state.liquidatable}"

    @rule(usd=st.integers(1, 1_000_000), deposit=st.booleans())
    def lp(self, usd: int, deposit: bool) -> None:
        self.begin()
        amount = usd * self.unit
        out = self.send(self.d.lp, self.d.pool, self.p.pool, "deposit" if deposit else "withdraw", amount)
        if not isinstance(out, Reverted):
            self.lp_flow = amount if deposit else -amount

    @rule(m=MARKET, imf_bps=st.integers(0, 300))
    def queue_and_apply_imf_raise(self, m: int, imf_bps: int) -> None:
        """Raise a market's imf: queued, not in force a minute before its delay ("config: too
        early"), applied by anyone at its time. (That a healthy account stays healthy until then
        is tests/test_governance.py's, at a fixed price and time.)"""
        self.begin()
        params = list(self.state.markets[m].params)
        params[0] = params[0] + params[0] * imf_bps // 10_000
        cfg = self.p.config
        out = self.send(self.w.owner, self.d.config, cfg, "set_market_params", m, tuple(params))
        if isinstance(out, Reverted) or imf_bps == 0:
            return
        self.observe()
        assert self.state.markets[m].params[0] == self.before.markets[m].params[0], "a raise applied at once"
        delay = self.p.view(self.d.config, cfg, "risk_delay")
        self.p.node.increase_time(delay - 60)
        self.refresh_feeds()
        early = self.send(self.w.owner, self.d.config, cfg, "apply_market_params", m)
        assert isinstance(early, Reverted) and early.reason == "config: too early", "applied before its delay"
        self.observe()
        assert self.state.markets[m].params[0] == self.before.markets[m].params[0], "a raise applied early"
        self.p.node.increase_time(60)
        self.refresh_feeds()
        applied = self.send(self.d.keeper, self.d.config, cfg, "apply_market_params", m)
        assert not isinstance(applied, Reverted), f"apply failed: {applied.reason}"

    # -- checks -----------------------------------------------------------------------------

    def observe(self) -> None:
        self.state = self.p.read()

    def check_liquidation(self, t: str, out: Any, which: int, has_unit: bool) -> None:
        before = self.state
        if isinstance(out, Reverted):
            assert out.reason == "engine: not liquidatable", f"liquidation refused with {out.reason!r}"
            if has_unit:
                h = before.accounts[t].health
                # refused: the unit is healthy (cross health, or the isolated position's own)
                if which == CROSS:
                    assert h.equity >= h.maintenance_req, "a liquidatable cross side was refused"
            return
        self.observe()
        after = self.state.accounts[t]
        if which == CROSS:
            for m, p in enumerate(after.positions):
                if before.accounts[t].positions[m].isolated:
                    assert tuple(p) == tuple(before.accounts[t].positions[m]), "a cross liquidation touched an isolated position"
            if any(p.size != 0 and not p.isolated for p in after.positions):
                liq = self.c.liquidation
                h = after.health
                assert h.equity * WAD >= liq.liq_target * h.maintenance_req, "partial liquidation left below target"
        else:
            assert after.collateral >= before.accounts[t].collateral, "an isolated liquidation took cross collateral"
            for m, p in enumerate(after.positions):
                if m != which:
                    assert tuple(p) == tuple(before.accounts[t].positions[m]), "an isolated liquidation touched another position"

    @invariant()
    def invariants_hold(self) -> None:
        self.observe()
        s, b, c = self.state, self.before, self.c
        margins = sum(p.margin for a in s.accounts.values() for p in a.positions)
        assert 0 <= s.pool_owed < c.scale, f"pool_owed {s.pool_owed}"
        claims = sum(a.collateral for a in s.accounts.values()) + margins + s.insurance + s.pool_owed
        assert s.engine_tokens * c.scale == claims, f"engine holds {s.engine_tokens * c.scale}, owes {claims}"
        assert s.pool_assets == s.pool_tokens
        for m, mk in enumerate(s.markets):
            longs = sum(max(a.positions[m].size, 0) for a in s.accounts.values())
            shorts = sum(max(-a.positions[m].size, 0) for a in s.accounts.values())
            assert (mk.oi_long, mk.oi_short) == (longs, shorts), f"market {m}: oi vs positions"
        holders = {a for a, acc in s.accounts.items() if any(p.size != 0 for p in acc.positions)}
        assert set(s.listed) == holders and len(s.listed) == len(holders), "account list vs holders"
        for a, acc in s.accounts.items():
            want = sum(1 << m for m, p in enumerate(acc.positions) if p.size != 0)
            want |= sum(1 << (16 + m) for m, p in enumerate(acc.positions) if p.size != 0 and p.isolated)
            assert acc.mask == want, f"{a}: mask {acc.mask:b} vs positions {want:b}"
            for p in acc.positions:
                assert p.size != 0 or (p.cost == 0 and p.margin == 0), f"{a}: a closed position keeps cost or margin"
        assert s.liquidatable == [a for a in s.listed if s.accounts[a].health.liquidatable]
        # the pool gains exactly what the step's events say
        fees = sum(e.fee for e in events(self.sent, "Trade"))
        realized = sum(e.realized_pnl for e in events(self.sent, "Trade"))
        realized += sum(e.realized_pnl for e in events(self.sent, "PositionLiquidated"))
        funding = sum(e.funding for e in events(self.sent, "Trade"))
        funding += sum(e.funding for e in events(self.sent, "PositionLiquidated"))
        funding += sum(e.funding for e in events(self.sent, "IsolatedMargin"))
        written = sum(e.pool_written_off for e in events(self.sent, "BadDebt"))
        written += sum(e.amount for e in events(self.sent, "InsuranceShortfall"))
        gain = (s.pool_tokens - b.pool_tokens) * c.scale + (s.pool_owed - b.pool_owed)
        want = fees - realized + funding - written + self.lp_flow * c.scale
        assert gain == want, f"pool gained {gain}, events say {want} (fees {fees}, pnl {realized}, funding {funding}, written off {written})"
        self.w.stats["funding settled (wei, abs)"] += sum(abs(e.funding) for e in events(self.sent, "Trade"))


def run_advanced(world: AdvancedWorld, examples: int, steps: int, seed: int | None = None) -> None:
    def factory() -> AdvancedMachine:
        return AdvancedMachine(world)

    if seed is not None:
        factory = hypothesis.seed(seed)(factory)
    world.max_steps = steps
    started = time.perf_counter()
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
        world.seconds += time.perf_counter() - started


def report(world: AdvancedWorld, title: str, steps: int) -> str:
    lines = [f"{title}: {world.examples} examples, {world.seconds:.1f} s"]
    for name, n in sorted(world.stats.items()):
        lines.append(f"  {name:32} {n}")
    return "\n".join(lines)


__all__ = ["AdvancedMachine", "AdvancedWorld", "State", "run_advanced", "report"]
