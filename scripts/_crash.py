"""A real crash replayed on a local chain while the real keeper liquidates.

`run(settings)` starts its own anvil, deploys config/local.yaml through the deploy script's code,
funds the pool and the insurance fund, opens the trader book (scripts/_book.py), starts
`ballast-keeper run` as a subprocess, then publishes the window's feed answers (scripts/_replay.py)
one block each, with the block's timestamp set to the answer's time.

Mining is manual, so every block is the replayer's, and each one is checked (`healths` of every
trader at that block). When an update leaves accounts liquidatable, the replayer waits until the
keeper's /healthz says it has processed that block (its transactions are in the node's pool by
then), or at most `keeper_wait` seconds (a mainnet block), then mines the next block, and repeats
while accounts stay liquidatable (at most `settle_blocks` blocks). An update that leaves nothing
liquidatable is followed at once by the next. The delay of a liquidation is measured from the
Liquidation events against the first block of the spell in which the account was liquidatable.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account

from _book import Trader, make_book, max_leverage, position_txs
from _deploy import ROOT, DeployConfig, deploy_to_node, load_config
from _replay import Update, feed_updates, path_points, read_candles

from keeper.abi import EVENTS, Event, EventInput, decode_healths, fn
from keeper.engine import EngineClient, block_tag
from keeper.localchain import Anvil, DevChain, TraderSpec, free_port, selector_call
from keeper.rpc import Rpc, RpcError

WAD = 10**18
GWEI = 10**9
ETH = 0
DEFAULT_WINDOW = ROOT / "scripts" / "data" / "eth_usd_1h_2020-03-11_black_thursday.csv"
# anvil's default dev account 1 (the deployer is account 0); a well-known local key
KEEPER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
TX_FEE = 50 * GWEI  # maxFeePerGas of the replayer's own transactions
HEALTHS_CHUNK = 1000  # the most accounts one healths() call takes

BAD_DEBT = Event(
    "BadDebt",
    (
        EventInput("account", "address", True),
        EventInput("amount", "uint256", False),
        EventInput("insurance_paid", "uint256", False),
        EventInput("pool_written_off", "uint256", False),
    ),
)
INSURANCE_SHORTFALL = Event("InsuranceShortfall", (EventInput("amount", "uint256", False),))


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why."""


@dataclass
class DemoSettings:
    window: Path = DEFAULT_WINDOW
    traders: int = 500
    seed: int = 2020
    candles: int | None = None  # replay only the first candles of the window
    pool_usd: int = 10_000_000
    insurance_usd: int = 25_000
    config: Path = ROOT / "config" / "local.yaml"
    keeper_wait: float = 12.0  # wall seconds the replayer waits for the keeper per block
    settle_blocks: int = 5  # most blocks mined after an update while accounts stay liquidatable
    workdir: Path = ROOT / "reports"


@dataclass
class Progress:
    """What the live display shows."""

    update: int
    updates: int
    price: float
    block: int
    liquidated_partial: int
    liquidated_full: int
    insurance_usd: float
    liquidatable: int


@dataclass
class Outcome:
    figures: dict[str, Any]
    timeline: list[dict[str, Any]]
    liquidations: list[dict[str, Any]]
    keeper_log: Path


@dataclass
class _Spell:
    account: str
    start: int
    end: int  # last block seen liquidatable


@dataclass
class _Chain:
    """The chain as the replayer drives it: raw JSON-RPC, manual mining."""

    rpc: Rpc
    dev: DevChain
    engine: EngineClient
    record: dict[str, Any]
    deployer: str
    block: int = 0
    timestamp: int = 0
    checked: dict[int, frozenset[str]] = field(default_factory=dict)  # block -> liquidatable

    def mine(self, timestamp: int) -> int:
        self.timestamp = max(timestamp, self.timestamp + 1)
        self.rpc.request("evm_mine", [self.timestamp])
        self.block += 1
        return self.block

    def send(self, to: str, signature: str, types: list[str], args: list[Any], gas: int = 200_000) -> str:
        tx = {"from": self.deployer, "to": to, "data": selector_call(signature, types, args), "gas": gas}
        return self.dev.send_many([tx], fee=TX_FEE)[0]

    def read(self, block: int, traders: list[str]) -> tuple[frozenset[str], int, int]:
        """(liquidatable traders, insurance fund WAD, ETH price WAD) at `block`, in one request."""
        chunks = [traders[i : i + HEALTHS_CHUNK] for i in range(0, len(traders), HEALTHS_CHUNK)]
        *healths, insurance, price = self.rpc.batch(
            [self.engine.view("healths", c, block=block) for c in chunks]
            + [self.engine.view("insurance_fund", block=block), self.engine.view("price", ETH, block=block)]
        )
        for what, raw in [("healths", h) for h in healths] + [("insurance_fund", insurance), ("price", price)]:
            if isinstance(raw, RpcError):
                raise DemoError(f"reading {what} at block {block} failed: {raw.revert_reason or raw}")
        found = frozenset(
            a for chunk, raw in zip(chunks, healths) for a, h in zip(chunk, decode_healths(raw)) if h.liquidatable
        )
        self.checked[block] = found
        return found, fn("insurance_fund").decode_one(insurance), fn("price").decode_one(price)

    def word(self, to: str, signature: str, block: int | str = "latest", signed: bool = False) -> int:
        raw = self.rpc.request("eth_call", [{"to": to, "data": selector_call(signature)}, hex(block) if isinstance(block, int) else block])
        v = int(raw, 16)
        return v - 2**256 if signed and v >= 2**255 else v


def maintenance_fraction(engine: EngineClient, market_id: int, block: int) -> float:
    """The market's maintenance margin fraction at `block`, for the chart. The one place that
    reads it: the first bracket's fraction raised to the volatility term (larger positions need
    more in their higher brackets)."""
    vol_mmf = engine.read("market_state", market_id, block=block)[3]
    config = engine.read("config", block=block)
    raw = engine.rpc.request("eth_call", [{"to": config, "data": fn("brackets").encode(market_id)}, block_tag(block)])
    first_bracket = fn("brackets").decode_one(raw)[0][1]
    return max(first_bracket, vol_mmf) / WAD


def load_updates(window: Path, candles: int | None = None) -> list[Update]:
    """The feed answers of a window (all candles, or the first `candles`)."""
    found = read_candles(window)
    if candles is not None:
        if candles < 1:
            raise DemoError("--candles must be at least 1")
        found = found[:candles]
    return feed_updates(path_points(found))


def run(settings: DemoSettings, progress: Callable[[Progress], None] | None = None) -> Outcome:
    """Deploy, open the book, start the keeper, replay the window; return what was measured."""
    updates = load_updates(settings.window, settings.candles)
    cfg = load_config(settings.config)
    settings.workdir.mkdir(parents=True, exist_ok=True)
    keeper_log = settings.workdir / f"{settings.window.stem}.keeper.log"
    with Anvil() as anvil, tempfile.TemporaryDirectory(prefix="ballast-demo-") as scratch:
        chain, traders = _set_up(anvil.url, cfg, settings, updates[0])
        with _KeeperProcess(anvil.url, chain.record, Path(scratch), keeper_log) as keeper:
            timeline = _replay(chain, keeper, [t.address for t in traders], updates, cfg, settings, progress)
            keeper.stop()
            figures, liquidations = _measure(chain, keeper, traders, timeline, settings, updates)
    figures["keeper_exit_code"] = keeper.exit_code
    return Outcome(figures, timeline, liquidations, keeper_log)


# -- set-up -------------------------------------------------------------------------------------


def _answer(price: Decimal, decimals: int) -> int:
    return int(price * 10**decimals)


def _set_up(url: str, cfg: DeployConfig, settings: DemoSettings, start: Update) -> tuple[_Chain, list[Trader]]:
    record, deployer = deploy_to_node(url, settings.config)
    rpc = Rpc([url], timeout=120.0, retries=1)
    dev = DevChain(rpc)
    engine = EngineClient(rpc, record["contracts"]["engine"], healths_batch=1000)
    chain = _Chain(rpc, dev, engine, record, deployer)
    market = cfg.markets[ETH]
    book = make_book(settings.traders, settings.seed, lambda n: max_leverage(market, n))
    token = record["contracts"]["collateral"]
    usd = 10 ** record["collateral_decimals"]

    dev.automine(False)
    dev.hold_base_fee = GWEI
    # the window's first price before anyone trades
    hashes = [dev.set_feed_answer(record["markets"][ETH]["feed"], _answer(start.price, market.feed.decimals), deployer)]
    dev.mine_until_done(hashes)
    dev.seed_pool(record, deployer, settings.pool_usd * usd)
    specs = [TraderSpec(t.address, int(t.collateral_usd * usd), ()) for t in book]
    dev.open_traders(record, specs, funder=deployer)  # collateral only: mint, approve, deposit
    engine_address = record["contracts"]["engine"]
    hashes = [
        chain.send(token, "mint(address,uint256)", ["address", "uint256"], [deployer, settings.insurance_usd * usd]),
        chain.send(engine_address, "fund_insurance(uint256)", ["uint256"], [settings.insurance_usd * usd]),
    ]
    dev.mine_until_done(hashes)
    txs = [tx for t in book for tx in position_txs(t, engine_address, start.price, usd)]
    try:
        dev.mine_until_done(dev.send_many(txs))
    except RuntimeError as exc:
        raise DemoError(f"opening the traders' positions failed: {exc}") from None
    dev.hold_base_fee = None
    head = rpc.request("eth_getBlockByNumber", ["latest", False])
    chain.block = int(head["number"], 16)
    chain.timestamp = int(head["timestamp"], 16)
    return chain, book


# -- the keeper ---------------------------------------------------------------------------------


class _KeeperProcess:
    """`ballast-keeper run` as a subprocess, with its /healthz."""

    def __init__(self, url: str, record: dict[str, Any], workdir: Path, log_path: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.log_path = log_path
        self.deployment = workdir / "deployment.json"
        self.deployment.write_text(json.dumps(record))
        self.state = workdir / "keeper.sqlite"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.address = Account.from_key(KEEPER_KEY).address

    def command(self) -> list[str]:
        script = Path(sys.executable).parent / "ballast-keeper"
        base = [str(script)] if script.is_file() else [sys.executable, "-c", "from keeper.cli import main; main()"]
        return base + [
            "run",
            "--rpc-url", self.url,
            "--deployment", str(self.deployment),
            "--state-db", str(self.state),
            "--metrics-port", str(self.port),
            "--poll-interval", "0.005",
            "--block-time", "0",
            "--rpc-retries", "1",
            "--log-level", "INFO",
        ]  # fmt: skip

    def __enter__(self) -> _KeeperProcess:
        env = dict(os.environ, BALLAST_PRIVATE_KEY=KEEPER_KEY)
        # the keeper of this source tree, whichever checkout the environment was installed from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.command(), stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)
        deadline = time.monotonic() + 60
        while self.processed() is None:
            if time.monotonic() > deadline:
                raise DemoError(f"the keeper did not start within 60 s; its log: {self.log_path}")
            time.sleep(0.05)
        return self

    def processed(self) -> int | None:
        """The last block the keeper has finished a pass over (None before its first pass)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise DemoError(f"the keeper exited with code {self.proc.returncode}; its log: {self.log_path}:\n{self.tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            conn.request("GET", "/healthz")
            body = json.loads(conn.getresponse().read())
            conn.close()
        except (OSError, ValueError):
            return None
        return body.get("block") if body.get("status") == "ok" else None

    def wait_for(self, block: int, timeout: float) -> bool:
        """Wait until the keeper has processed `block`; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.processed()
            if done is not None and done >= block:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.002)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.exit_code = self.proc.returncode
        self.proc = None
        self.log.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the replay ---------------------------------------------------------------------------------


def _replay(
    chain: _Chain,
    keeper: _KeeperProcess,
    traders: list[str],
    updates: list[Update],
    cfg: DeployConfig,
    settings: DemoSettings,
    progress: Callable[[Progress], None] | None,
) -> list[dict[str, Any]]:
    record = chain.record
    feeds = [(m["feed"], cfg_m.feed.decimals) for m, cfg_m in zip(record["markets"], cfg.markets)]
    eth_feed, eth_decimals = feeds[ETH]
    # other markets keep their price; their feeds answer on heartbeat, so their oracles stay fresh
    flat_answers = {i: _latest_answer(chain, feed) for i, (feed, _) in enumerate(feeds) if i != ETH}
    last_refresh = {i: chain.timestamp for i in flat_answers}
    heartbeat = {i: m["heartbeat"] for i, m in enumerate(record["markets"])}

    origin = chain.timestamp + 1
    t0 = updates[0].timestamp
    timeline: list[dict[str, Any]] = []
    partial = full = 0
    for index, u in enumerate(updates):
        when = origin + (u.timestamp - t0)
        chain.send(eth_feed, "set_answer(int256)", ["int256"], [_answer(u.price, eth_decimals)])
        for i, answer in flat_answers.items():
            if when - last_refresh[i] >= heartbeat[i] // 2:
                chain.send(feeds[i][0], "set_answer(int256)", ["int256"], [answer])
                last_refresh[i] = when
        block = chain.mine(when)
        liquidatable, insurance, price = chain.read(block, traders)
        expected = _answer(u.price, eth_decimals) * 10 ** (18 - eth_decimals)
        if price != expected:
            raise DemoError(f"update {index}: the oracle reads {price / WAD} at block {block}, not {u.price}")
        entry: dict[str, Any] = {
            "t": u.timestamp,
            "reason": u.reason,
            "price": float(u.price),
            "block": block,
            "chain_time": chain.timestamp,
            "insurance_usd": insurance / WAD,
            "mmf": maintenance_fraction(chain.engine, ETH, block),
            "liquidatable_at_update": len(liquidatable),
            "left_after_update": 0,
            "blocks_after_update": 0,
            "keeper_late": 0,
        }
        now = liquidatable
        while True:
            # every block waits for the keeper's pass over the one before, as on a chain whose
            # blocks come slower than the keeper's passes
            if not keeper.wait_for(chain.block, settings.keeper_wait):
                entry["keeper_late"] += 1
            if not now or entry["blocks_after_update"] >= settings.settle_blocks:
                break
            chain.mine(chain.timestamp + 1)
            now, insurance, _ = chain.read(chain.block, traders)
            entry["blocks_after_update"] += 1
            if entry["blocks_after_update"] == 1:
                entry["left_after_update"] = len(now)
        entry["insurance_usd"] = insurance / WAD
        timeline.append(entry)
        if progress is not None:
            if liquidatable:
                for lg in _logs(chain, EVENTS["Liquidation"], block, chain.block):
                    full += lg["full"]
                    partial += not lg["full"]
            progress(Progress(index + 1, len(updates), float(u.price), chain.block, partial, full, insurance / WAD, len(now)))
    return timeline


def _latest_answer(chain: _Chain, feed: str) -> int:
    raw = chain.rpc.request("eth_call", [{"to": feed, "data": selector_call("latestRoundData()")}, "latest"])
    data = bytes.fromhex(raw[2:])
    v = int.from_bytes(data[32:64], "big")
    return v - 2**256 if v >= 2**255 else v


# -- what happened ------------------------------------------------------------------------------


def _logs(chain: _Chain, event: Event, first: int, last: int) -> list[dict[str, Any]]:
    raw = chain.rpc.request(
        "eth_getLogs",
        [{"address": chain.engine.address, "fromBlock": hex(first), "toBlock": hex(last), "topics": [event.topic]}],
    )
    out = []
    for lg in raw:
        d = event.decode(lg)
        d["block"] = int(lg["blockNumber"], 16)
        d["tx"] = lg["transactionHash"]
        out.append(d)
    return out


def _spells(checked: dict[int, frozenset[str]]) -> list[_Spell]:
    """Maximal runs of consecutive checked blocks in which an account was liquidatable."""
    open_: dict[str, _Spell] = {}
    done: list[_Spell] = []
    for block in sorted(checked):
        now = checked[block]
        for a in list(open_):
            if a not in now:
                done.append(open_.pop(a))
        for a in now:
            if a in open_:
                open_[a].end = block
            else:
                open_[a] = _Spell(a, block, block)
    return done + list(open_.values())


def delays(checked: dict[int, frozenset[str]], liquidated: dict[str, list[int]], last_block: int) -> tuple[list[int], list[_Spell]]:
    """How many blocks each liquidatable spell lasted: from its first block to the block in which
    the account was no longer liquidatable (a liquidation that leaves it liquidatable does not end
    it). Also the spells that no liquidation ended (the price moved back, or the run ended: those
    count to the block after their last, or to the end)."""
    out, missed = [], []
    for s in _spells(checked):
        out.append(min(s.end + 1, last_block + 1) - s.start)
        if s.end + 1 not in liquidated.get(s.account, []):
            missed.append(s)
    return out, missed


def _measure(
    chain: _Chain,
    keeper: _KeeperProcess,
    book: list[Trader],
    timeline: list[dict[str, Any]],
    settings: DemoSettings,
    updates: list[Update],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    first, last = timeline[0]["block"], chain.block
    contracts = chain.record["contracts"]
    liqs = _logs(chain, EVENTS["Liquidation"], first, last)
    bad = _logs(chain, BAD_DEBT, first, last)
    shortfalls = _logs(chain, INSURANCE_SHORTFALL, first, last)
    by_account: dict[str, list[int]] = {}
    for lg in liqs:
        by_account.setdefault(lg["account"], []).append(lg["block"])
    spell_delays, missed = delays(chain.checked, by_account, last)

    keeper_liqs = [lg for lg in liqs if lg["liquidator"].lower() == keeper.address.lower()]
    # every transaction the keeper got mined, whether it liquidated anything or not
    keeper_txs = []
    for block in chain.rpc.batch([("eth_getBlockReceipts", [hex(b)]) for b in range(first, last + 1)]):
        if isinstance(block, RpcError):
            raise DemoError(f"reading the replay's receipts failed: {block}")
        keeper_txs += [r for r in block if r["from"].lower() == keeper.address.lower()]
    gas = sum(int(r["gasUsed"], 16) for r in keeper_txs)

    usd = 10 ** chain.record["collateral_decimals"]
    pool = contracts["pool"]
    pool_assets = chain.word(pool, "totalAssets()") / usd
    owed = chain.word(contracts["engine"], "pool_owed()", signed=True) / WAD
    traders = [t.address for t in book]
    healths, errors = chain.engine.healths(traders, last)
    if errors:
        raise DemoError(f"reading the traders' health at the end failed: {errors[0]}")
    coll = chain.rpc.batch([chain.engine.view("collateral", a, block=last) for a in traders])
    unrealized = sum(healths[a].equity - fn("collateral").decode_one(c) for a, c in zip(traders, coll)) / WAD

    bad_usd = sum(b["amount"] for b in bad) / WAD
    to_pool = sum(b["pool_written_off"] for b in bad) / WAD
    from_insurance = sum(b["insurance_paid"] for b in bad) / WAD
    left = [e["left_after_update"] for e in timeline]
    figures: dict[str, Any] = {
        "window": settings.window.stem,
        "traders": len(book),
        "oracle_updates": len(updates),
        "liquidations_partial": sum(1 for lg in liqs if not lg["full"]),
        "liquidations_full": sum(1 for lg in liqs if lg["full"]),
        "bad_debt_usd": bad_usd,
        "bad_debt_insurance_paid_usd": from_insurance,
        "bad_debt_to_pool_usd": to_pool,
        "insurance_shortfall_usd": sum(s["amount"] for s in shortfalls) / WAD,
        "insurance_start_usd": chain.engine.read("insurance_fund", block=first - 1) / WAD,
        "insurance_end_usd": chain.engine.read("insurance_fund", block=last) / WAD,
        # since the pool was funded: its assets (fees included) and what the engine owes it, less
        # what the traders' open positions have gained at the last price (the pool is their
        # counterparty)
        "pool_pnl_usd": pool_assets + owed - settings.pool_usd - unrealized,
        "pool_realized_pnl_usd": pool_assets + owed - settings.pool_usd,
        "keeper_rewards_usd": sum(lg["reward"] for lg in keeper_liqs) / WAD,
        "penalty_income_usd": sum(lg["penalty_paid"] - lg["reward"] for lg in liqs) / WAD,
        "keeper_gas": gas,
        "keeper_transactions": len(keeper_txs),
        "keeper_transactions_failed": sum(1 for r in keeper_txs if int(r["status"], 16) != 1),
        "keeper_transactions_without_liquidation": len({r["transactionHash"] for r in keeper_txs} - {lg["tx"] for lg in keeper_liqs}),
        "other_liquidators": len({lg["liquidator"] for lg in liqs} - {keeper.address}),
        "max_delay_blocks": max(spell_delays, default=0),
        "left_liquidatable_after_update": max(left, default=0),
        "updates_leaving_liquidatable": sum(1 for x in left if x),
        "accounts_became_liquidatable": len({s.account for s in _spells(chain.checked)}),
        "accounts_liquidated": len(by_account),
        "spells_not_ended_by_liquidation": len(missed),
        "keeper_late_blocks": sum(e["keeper_late"] for e in timeline),
        "blocks": last - first + 1,
        "first_block": first,
        "last_block": last,
    }
    events = [
        {"block": lg["block"], "account": lg["account"], "full": lg["full"], "reward_usd": lg["reward"] / WAD}
        for lg in liqs
    ]
    return figures, events
