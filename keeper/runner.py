"""The keeper itself: start-up checks, account discovery, the per-block pass and the main loop.

One pass over a block (:meth:`Keeper.step`):

1. one batched request: the block header, the engine's events since the checkpoint, every market
   price, the signer's nonce and balance and the receipts of pending transactions;
2. settle mined transactions (outcomes, metrics, locks released), replace stuck ones;
3. new accounts from the events are saved with the checkpoint (atomically); accounts touched by
   an event get their model (collateral and positions) re-read in batch;
4. if prices or models changed, rank every account with the local model and confirm the riskiest
   (the model's liquidatable ones first) with batched ``healths`` calls;
5. every ``full_sweep_blocks`` blocks, sweep the whole on-chain account list with paged
   ``liquidatable_accounts`` calls, so nothing depends on the model or on events alone;
6. plan ``liquidate_many`` batches by gas, simulate them with ``eth_call`` (and
   ``eth_estimateGas``) in one request, skip those that lost the race or do not pay, send the rest.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from keeper.abi import HealthTuple, decode_word_uint
from keeper.batching import GasModel, PackingTarget, gas_cap_for, packing_target, plan_batches
from keeper.engine import EngineClient, EngineReadError, Head, MarketInfo, decode_logs
from keeper.fees import FeeCapReached, effective_gas_price
from keeper.metrics import KeeperMetrics, MetricsServer
from keeper.profit import evaluate_profit
from keeper.ranges import ChunkSizer, RangeRefused, scan_ranges
from keeper.ranking import AccountModel, AccountRisk, Ranking, rank_accounts, select_candidates
from keeper.rpc import Rpc, RpcError, RpcUnavailable, redact_url
from keeper.sender import FeePolicy, Sender, TxPlan
from keeper.settings import Deployment, KeeperSettings, SettingsError
from keeper.signer import Signer, SignerError, load_signer
from keeper.state import KeeperState, StateError
from keeper.units import WAD

__all__ = ["StartupError", "PassResult", "Keeper", "MAX_BATCH"]

log = logging.getLogger("keeper")

MAX_BATCH = 200
"""Longest ``liquidate_many`` list the engine takes."""

_HASH_WINDOW = 128
"""Processed blocks whose hashes are kept to find where a reorg forked."""

_ACCOUNT_EVENTS = {"AccountListed", "Trade", "Deposit", "Withdraw", "Liquidation", "PositionLiquidated"}
_MARKET_EVENTS = {"MarketAdded", "MarketParamsSet"}
_ETHER = 10**18


class StartupError(RuntimeError):
    """The keeper cannot start; the message is meant for the operator."""


@dataclass
class PassResult:
    """What one pass over a block found and did."""

    block: int
    candidates: int = 0
    liquidatable: list[str] = field(default_factory=list)
    swept: bool = False
    sweep_checked: int = 0
    sweep_seconds: float = 0.0
    plans: list[TxPlan] = field(default_factory=list)
    sent: int = 0
    lost_in_simulation: int = 0
    unprofitable: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each stage: read, models, rank, confirm, sweep, liquidate."""


class Keeper:
    """A liquidation keeper for one deployment.

    Use :meth:`connect` (start-up checks), then :meth:`start` (discovery, recovery), then
    :meth:`run`; or :meth:`scan_table` for a read-only pass.
    """

    def __init__(
        self,
        settings: KeeperSettings,
        deployment: Deployment,
        *,
        metrics: KeeperMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.deployment = deployment
        self.metrics = metrics or KeeperMetrics()
        urls = [settings.rpc_url] + ([settings.fallback_rpc_url] if settings.fallback_rpc_url else [])
        self.rpc = Rpc(
            urls,
            timeout=settings.rpc_timeout,
            retries=settings.rpc_retries,
            batch_size=settings.rpc_batch_size,
            on_request=self._on_rpc,
            on_transport_error=self._on_transport_error,
        )
        self.engine = EngineClient(
            self.rpc,
            deployment.contracts.engine,
            healths_batch=settings.healths_batch,
            sweep_page=settings.sweep_page,
        )
        self.shard = settings.shard
        self.chain_id: int | None = None
        self.state: KeeperState | None = None
        self.signer: Signer | None = None
        self.sender: Sender | None = None
        self.markets: dict[int, MarketInfo] = {}
        self.models: dict[str, AccountModel] = {}
        self.prices: dict[int, int] = {}
        self.dirty: set[str] = set()
        self.gas = GasModel()
        self.stop_event = threading.Event()
        self.server: MetricsServer | None = None
        self.processed: int | None = None
        self.last_sweep_block: int | None = None
        self.block_time = 12.0 if settings.block_time is None else settings.block_time
        self._ranking: Ranking | None = None
        self._rank_prices: dict[int, int] | None = None
        self._sizer = ChunkSizer(settings.log_chunk_blocks)
        self._price_errors: dict[int, str] = {}
        self._last_head: Head | None = None
        self._rpc_calls_seen = 0
        self._last_sim: list[tuple[Any, int | None]] = []
        self.history: list[PassResult] = []
        self.started_from_block: int | None = None
        """First block of the start-up event scan (the checkpoint + 1 after a restart)."""
        self._failovers_seen = 0
        self._block_hashes: dict[int, str] = {}
        """Hashes of recently processed blocks, to notice when one is replaced (a reorg)."""

    # -- start-up -------------------------------------------------------------------------------

    def _on_rpc(self, url: str, n_calls: int, seconds: float, ok: bool) -> None:
        self.metrics.rpc_requests.labels(endpoint=redact_url(url), outcome="ok" if ok else "error").inc()
        self.metrics.rpc_calls.inc(n_calls)

    def _on_transport_error(self, url: str, kind: str) -> None:
        self.metrics.rpc_errors.labels(kind=kind).inc()

    @property
    def url(self) -> str:
        return redact_url(self.settings.rpc_url)

    def connect(self, *, need_signer: bool, use_state: bool = True) -> None:
        """Check the node, the chain id, the engine, the state file and the signer.

        :raises StartupError: naming what is wrong and what to do.
        """
        try:
            chain_id = self.engine.chain_id()
        except RpcUnavailable as exc:
            raise StartupError(
                f"{exc}. Check --rpc-url / BALLAST_RPC_URL (and --fallback-rpc-url)"
            ) from None
        dep = self.deployment
        if chain_id != dep.chain_id:
            raise StartupError(
                f"chain id mismatch: the node at {self.url} is chain {chain_id}, but the "
                f"deployment file {self.settings.deployment} is for chain {dep.chain_id} "
                f"(network {dep.network}); point --rpc-url at the right node or pass the right "
                "--deployment"
            )
        try:
            self.settings.check_chain_id(chain_id, f"the node at {self.url}")
        except SettingsError as exc:
            raise StartupError(str(exc)) from None
        self.chain_id = chain_id
        if not self.engine.has_code():
            raise StartupError(
                f"no contract at the engine address {self.engine.address} on chain {chain_id} "
                f"(node {self.url}): the deployment file {self.settings.deployment} does not match "
                "this chain (a restarted local chain loses its contracts: deploy again)"
            )
        try:
            self.markets = {m.id: m for m in self.engine.markets(dep.market_names())}
        except (RpcError, EngineReadError) as exc:
            raise StartupError(
                f"the contract at {self.engine.address} does not answer as a Ballast engine: {exc}"
            ) from None
        if use_state:
            try:
                # the loop may run in another thread than the one that connected (tests, embedders)
                self.state = KeeperState(self.settings.state_db, check_same_thread=False)
                self.state.bind(chain_id, self.engine.address)
            except StateError as exc:
                raise StartupError(str(exc)) from None
        if need_signer:
            self._connect_signer()

    def _connect_signer(self) -> None:
        assert self.chain_id is not None and self.state is not None
        try:
            self.signer = load_signer(self.settings, self.chain_id)
        except SignerError as exc:
            raise StartupError(str(exc)) from None
        if self.signer is None:
            raise StartupError("no signer configured")
        balance = int(self.rpc.request("eth_getBalance", [self.signer.address, "latest"]), 16)
        self.metrics.signer_balance_eth.set(balance / _ETHER)
        if balance == 0:
            raise StartupError(
                f"the signer {self.signer.address} has no funds on chain {self.chain_id} "
                f"(balance 0): send it some native token for gas, or use --dry-run"
            )
        if self._native_price_source() is None:
            raise StartupError(
                f"cannot value gas in USD: the deployment has no market named "
                f"{self.settings.native_usd_market!r}; pass --native-usd-market or --native-usd-price"
            )
        self.sender = Sender(
            self.rpc,
            self.engine,
            self.signer,
            self.state,
            chain_id=self.chain_id,
            fees=self._fee_policy(),
            metrics=self.metrics,
            stuck_after_blocks=self.settings.stuck_after_blocks,
        )
        log.info(
            "signer ready",
            extra={"signer": self.signer.address, "source": self.signer.label, "balance_eth": balance / _ETHER},
        )

    def _fee_policy(self) -> FeePolicy:
        if self.sender is not None:
            return self.sender.fees
        return FeePolicy(
            priority_fee=self.settings.priority_fee_wei,
            max_fee_cap=self.settings.max_fee_cap_wei,
            base_fee_multiplier=self.settings.base_fee_multiplier,
            bump_percent=self.settings.bump_percent,
        )

    def _native_price_source(self) -> int | str | None:
        if self.settings.native_usd_price is not None:
            return "fixed"
        for m in self.markets.values():
            if m.name == self.settings.native_usd_market:
                return m.id
        return None

    def native_usd_price(self) -> int | None:
        """The gas token's USD price (WAD), or ``None`` if unknown now."""
        if self.settings.native_usd_price is not None:
            return int(self.settings.native_usd_price * WAD)
        src = self._native_price_source()
        return self.prices.get(src) if isinstance(src, int) else None

    def serve_metrics(self) -> None:
        """Start ``/metrics`` and ``/healthz`` (unless the port is 0)."""
        if self.settings.metrics_port == 0 or self.server is not None:
            return
        try:
            self.server = MetricsServer(
                self.metrics, self.settings.metrics_host, self.settings.metrics_port, self.health
            ).start()
        except OSError as exc:
            raise StartupError(
                f"cannot serve metrics on {self.settings.metrics_host}:{self.settings.metrics_port}: "
                f"{exc.strerror} (use --metrics-port, 0 to turn it off)"
            ) from None
        log.info("metrics served", extra={"url": f"http://{self.settings.metrics_host}:{self.server.port}/metrics"})

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``/healthz``: healthy while passes keep finishing."""
        last = self.metrics.last_pass_at
        age = None if last is None else time.time() - last
        ok = age is not None and age <= self.settings.health_max_age
        return ok, {
            "block": self.processed,
            "seconds_since_pass": None if age is None else round(age, 3),
            "accounts": len(self.models),
            "pending": int(self.metrics.value("pending_transactions")),
        }

    def start(self) -> Head:
        """Discover accounts (events from the checkpoint, and the on-chain list), read their
        models and prices, settle or replace what an earlier run left pending."""
        assert self.state is not None
        head = self.engine.head()
        cp = self.state.checkpoint()
        if cp is not None and cp > head.number:
            log.warning(
                "the chain is behind the checkpoint (a reorg or a reset local chain); rewinding",
                extra={"checkpoint": cp, "head": head.number},
            )
            self.state.save_checkpoint(head.number, rewind=True)
            cp = head.number
        start = self.deployment.deploy_block if cp is None else cp + 1
        self.started_from_block = start
        found = self._scan_events(start, head.number)
        listed = self.engine.account_list(head.number)
        added = self.state.add_accounts((a, head.number) for a in listed)
        known = [a for a in self.state.accounts() if self.shard.owns(a)]
        self.models = {}
        self._refresh_models(known, head.number)
        self._read_prices(head.number)
        self.processed = head.number
        self._last_head = head
        self._remember_block(head)
        self._learn_block_time(head)
        log.info(
            "keeper started",
            extra={
                "chain_id": self.chain_id,
                "engine": self.engine.address,
                "block": head.number,
                "events_from_block": start,
                "accounts_from_events": found,
                "accounts_listed_on_chain": len(listed),
                "accounts_added_from_list": added,
                "accounts_tracked": len(self.models),
                "shard": str(self.shard),
                "signer": self.signer.address if self.signer else None,
                "dry_run": self.settings.dry_run,
            },
        )
        if self.sender is not None and not self.settings.dry_run:
            self.sender.recover(head)
        self.metrics.accounts_tracked.set(len(self.models))
        self.metrics.head_block.set(head.number)
        return head

    # -- events and models ----------------------------------------------------------------------

    def _scan_events(self, start: int, end: int) -> int:
        """Events of ``[start, end]`` in shrinking ranges, each saved with the checkpoint."""
        assert self.state is not None
        if start > end:
            return 0
        total = 0

        def fetch(a: int, b: int) -> list[dict[str, Any]]:
            return decode_logs(self.rpc.request(*self.engine.logs_call(a, b)))

        def refused(exc: Exception) -> bool:
            if not _is_range_refusal(exc):
                return False
            self.metrics.log_ranges_refused.inc()
            return True

        try:
            for rng in scan_ranges(start, end, fetch, sizer=self._sizer, is_refusal=refused):
                total += self._ingest_logs(rng.result, rng.end)
        except RangeRefused as exc:
            raise EngineReadError(str(exc)) from exc
        return total

    def _ingest_logs(self, logs: Sequence[dict[str, Any]], to_block: int) -> int:
        """Mark touched accounts dirty, reload markets on a market event, and save the accounts
        with the checkpoint ``to_block``. Returns how many accounts were new."""
        assert self.state is not None
        items: dict[str, int] = {}
        markets_changed = False
        for ev in logs:
            name = ev["event"]
            if name in _ACCOUNT_EVENTS:
                a = ev["account"]
                if name in ("AccountListed", "Trade") and a not in items:
                    items[a] = ev["block"]
                if self.shard.owns(a):
                    self.dirty.add(a)
            elif name in _MARKET_EVENTS:
                markets_changed = True
        # the volatility term moves with every price (a feed update alone, with no engine event),
        # and parameters change through RiskConfig, whose events are not the engine's: reload the
        # markets' effective fractions on every pass (one batched request)
        markets_changed = True
        before = self.state.account_count()
        if self.state.checkpoint() is None or to_block > (self.state.checkpoint() or 0):
            self.state.record_scan(to_block, items.items())
        else:
            self.state.add_accounts(items.items())
        if markets_changed:
            self._reload_markets()
        return self.state.account_count() - before

    def _reload_markets(self) -> None:
        self.markets = {m.id: m for m in self.engine.markets(self.deployment.market_names())}
        def refreshed(p):
            info = self.markets.get(p.market_id)
            return p if info is None else replace(p, mmf=info.effective_mmf(abs(p.cost)))

        self.models = {
            a: replace(model, positions=tuple(refreshed(p) for p in model.positions))
            for a, model in self.models.items()
        }
        self._ranking = None
        log.info("market parameters reloaded", extra={"markets": len(self.markets)})

    def _refresh_models(self, accounts: Iterable[str], block: int) -> None:
        accounts = list(dict.fromkeys(accounts))
        if not accounts:
            return
        for i in range(0, len(accounts), 5_000):
            chunk = accounts[i : i + 5_000]
            for a, model in self.engine.read_models(chunk, self.markets, block).items():
                if model.positions:
                    self.models[a] = model
                else:
                    self.models.pop(a, None)
        self._ranking = None
        self.metrics.accounts_tracked.set(len(self.models))

    def _read_prices(self, block: int) -> None:
        ids = sorted(self.markets)
        self._apply_prices(self.engine.prices(ids, block))

    def _apply_prices(self, found: dict[int, int | RpcError]) -> None:
        prices: dict[int, int] = {}
        for m, p in found.items():
            if isinstance(p, RpcError):
                reason = p.revert_reason or p.message
                if self._price_errors.get(m) != reason:
                    log.warning(
                        "market price unavailable; its accounts cannot be liquidated now",
                        extra={"market": m, "error": reason},
                    )
                self._price_errors[m] = reason
            else:
                if m in self._price_errors:
                    log.info("market price available again", extra={"market": m})
                    self._price_errors.pop(m)
                prices[m] = p
        self.prices = prices

    # -- one pass -------------------------------------------------------------------------------

    def step(self, block: int | None = None, *, force_sweep: bool = False, send: bool = True) -> PassResult:
        """One pass over ``block`` (the latest by default)."""
        assert self.state is not None
        started = time.monotonic()
        if block is None:
            block = int(self.rpc.request("eth_blockNumber"), 16)
        cp = self.state.checkpoint()
        went_back = cp is not None and cp > block
        from_block = self.deployment.deploy_block if cp is None else min(cp, block) + 1
        small_range = block - from_block + 1 <= self._sizer.chunk
        logs_in_batch = small_range and from_block <= block
        # the hash of the last processed block at or below this one: changed means a reorg
        check = max((n for n in self._block_hashes if n <= block), default=None)
        calls: list[tuple[str, list[Any]]] = [("eth_getBlockByNumber", [hex(block), False])]
        ids = sorted(self.markets)
        calls += self.engine.price_calls(ids, block)
        if logs_in_batch:
            calls.append(self.engine.logs_call(from_block, block))
        if check is not None and check != block:
            calls.append(("eth_getBlockByNumber", [hex(check), False]))
        status_calls = self.sender.status_calls() if self.sender else []
        results = self.rpc.batch(calls + status_calls)
        if isinstance(results[0], RpcError) or results[0] is None:
            raise EngineReadError(f"cannot read block {block}: {results[0]}")
        head = Head.from_rpc(results[0])
        self._note_head(head)
        self._apply_prices(EngineClient.decode_prices(ids, results[1 : 1 + len(ids)]))
        k = 1 + len(ids)
        raw_logs = results[k] if logs_in_batch else None
        k += 1 if logs_in_batch else 0
        fork: int | None = None
        if check is not None:
            seen = results[0] if check == block else results[k]
            k += 0 if check == block else 1
            if not isinstance(seen, dict) or seen.get("hash") != self._block_hashes[check]:
                fork = self._fork_point(check)
            elif went_back:
                fork = check  # the chain only lost blocks after this one
        elif went_back:
            fork = block  # nothing recorded to compare with: trust the number
        if fork is not None:
            self._on_reorg(fork, block)
            force_sweep = True
            self._scan_events(fork + 1, block)  # events of the new branch (the batch's are stale)
        elif isinstance(raw_logs, RpcError):
            self.metrics.log_ranges_refused.inc()
            self._scan_events(from_block, block)  # refused: shrink the range
        elif logs_in_batch:
            self._ingest_logs(decode_logs(raw_logs), block)
        elif from_block <= block:
            self._scan_events(from_block, block)
        # Receipts come from the node's head, which may be past ``block`` by now: the accounts of
        # a transaction mined after ``block`` still look liquidatable in this pass's reads (pinned
        # to ``block``), and simulating them again would count our own liquidations as lost races.
        settled_after: set[str] = set()
        if self.sender is not None:
            for outcome in self.sender.process_status(head, results[k:]):
                if outcome.status == "mined" and outcome.gas_limit and outcome.accounts:
                    self.gas.observe_receipt(
                        int(outcome.gas_limit / (1 + float(self.settings.gas_limit_margin))), outcome.gas_used
                    )
                if outcome.status == "mined" and (outcome.block or 0) > block:
                    settled_after.update(outcome.accounts)
            if send and not self.settings.dry_run:
                self.sender.replace_stuck(head)

        result = PassResult(block=block)
        clock = time.monotonic()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.monotonic()
            result.timings[stage] = round(result.timings.get(stage, 0.0) + now - clock, 4)
            clock = now

        result.timings["read"] = round(clock - started, 4)
        # models of accounts touched since the last pass
        if self.dirty:
            dirty, self.dirty = self.dirty, set()
            self._refresh_models(dirty, block)
        locked = self.state.locked_accounts() | settled_after
        liquidatable: dict[str, None] = {}

        lap("models")
        # rank and confirm
        if self._ranking is None or self.prices != self._rank_prices:
            self._ranking = rank_accounts(self.models.values(), self.prices)
            self._rank_prices = dict(self.prices)
        lap("rank")
        candidates = [
            a
            for a in select_candidates(
                self._ranking,
                max_distance=self.settings.candidate_distance,
                limit=self.settings.max_candidates + len(locked),
            )
            if a not in locked
        ][: self.settings.max_candidates]
        result.candidates = len(candidates)
        confirmed: dict[str, HealthTuple] = {}
        if candidates:
            confirmed, errors = self.engine.healths(candidates, block)
            for err in errors[:1]:
                log.warning("healths call reverted", extra={"error": err.revert_reason or err.message})
            for a, h in confirmed.items():
                if h.liquidatable:
                    liquidatable[a] = None
            self._check_model(confirmed)
        lap("confirm")

        # full sweep
        due = self.last_sweep_block is None or block - self.last_sweep_block >= self.settings.full_sweep_blocks
        if force_sweep or due:
            t = time.monotonic()
            swept, checked, errors = self.engine.sweep(block)
            result.sweep_seconds = time.monotonic() - t
            result.swept, result.sweep_checked = True, checked
            self.last_sweep_block = block
            self.metrics.sweep_duration.observe(result.sweep_seconds)
            self.metrics.sweep_accounts.set(checked)
            for err in errors[:1]:
                log.warning("sweep call reverted", extra={"error": err.revert_reason or err.message})
            mine = [a for a in swept if self.shard.owns(a) and a not in locked]
            flagged = {r.account for r in self._ranking.ranked if r.liquidatable} if self._ranking else set()
            misses = [a for a in mine if a not in flagged]
            if misses:
                unknown = [a for a in misses if a not in self.models]
                if unknown:
                    self.state.add_accounts((a, block) for a in unknown)
                self.metrics.model_misses.inc(len(misses))
                self.dirty.update(misses)
                log.info(
                    "sweep found liquidatable accounts the model had not confirmed",
                    extra={"count": len(misses), "unknown": len(unknown)},
                )
            for a in mine:
                liquidatable[a] = None
        lap("sweep")

        result.liquidatable = list(liquidatable)
        self.metrics.liquidatable_seen.set(len(liquidatable))
        self.metrics.liquidatable_found.inc(len(liquidatable))
        if liquidatable and send:
            self._liquidate(head, result, self._by_risk(result.liquidatable))
        lap("liquidate")
        result.seconds = time.monotonic() - started
        if self.rpc.stats.failovers > self._failovers_seen:
            self.metrics.rpc_failovers.inc(self.rpc.stats.failovers - self._failovers_seen)
            self._failovers_seen = self.rpc.stats.failovers
        self.processed = block
        self._remember_block(head)
        self.metrics.head_block.set(block)
        self.metrics.scan_duration.observe(result.seconds)
        self.metrics.last_pass_at = time.time()
        self.history.append(result)
        if len(self.history) > 1000:
            del self.history[:500]
        if result.liquidatable or result.swept:
            log.info(
                "pass",
                extra={
                    "block": block,
                    "candidates": result.candidates,
                    "liquidatable": len(result.liquidatable),
                    "swept": result.sweep_checked if result.swept else None,
                    "sweep_seconds": round(result.sweep_seconds, 4) if result.swept else None,
                    "sent": result.sent,
                    "lost_in_simulation": result.lost_in_simulation,
                    "unprofitable": result.unprofitable,
                    "seconds": round(result.seconds, 4),
                },
            )
        return result

    # -- reorgs --------------------------------------------------------------------------------

    def _remember_block(self, head: Head) -> None:
        """Keep the hash of a processed block (the last ``_HASH_WINDOW`` of them)."""
        if not head.hash:
            return
        self._block_hashes[head.number] = head.hash
        for n in sorted(self._block_hashes)[:-_HASH_WINDOW]:
            del self._block_hashes[n]

    def _fork_point(self, changed: int) -> int:
        """The newest remembered block below ``changed`` that is still on the chain (one batched
        request); below the oldest remembered one when none is."""
        older = sorted((n for n in self._block_hashes if n < changed), reverse=True)
        found = self.rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in older])
        for n, blk in zip(older, found):
            if isinstance(blk, dict) and blk.get("hash") == self._block_hashes[n]:
                return n
        return max(self.deployment.deploy_block, (older[-1] if older else changed)) - 1

    def _on_reorg(self, fork: int, head: int) -> None:
        """Blocks after ``fork`` were replaced: forget them, rewind the checkpoint so their events
        are read again, and re-read every account (a liquidation in a dropped block is undone)."""
        assert self.state is not None
        log.warning(
            "chain reorganization: blocks after the fork are read again and every account re-checked",
            extra={"fork_block": fork, "processed": self.processed, "head": head},
        )
        self.metrics.reorgs_detected.inc()
        cp = self.state.checkpoint()
        if cp is not None and cp > fork:
            self.state.save_checkpoint(fork, rewind=True)
        for n in [n for n in self._block_hashes if n > fork]:
            del self._block_hashes[n]
        self.dirty.update(a for a in self.state.accounts() if self.shard.owns(a))
        self._ranking = None

    def _learn_block_time(self, head: Head, span: int = 20) -> None:
        if head.number < 2 or self.settings.block_time is not None:
            return
        past = self.engine.head(max(0, head.number - span))
        if head.number > past.number and head.timestamp >= past.timestamp:
            self.block_time = (head.timestamp - past.timestamp) / (head.number - past.number)

    def _note_head(self, head: Head) -> None:
        prev = self._last_head
        learn = self.settings.block_time is None
        if learn and prev is not None and head.number > prev.number and head.timestamp >= prev.timestamp:
            per_block = (head.timestamp - prev.timestamp) / (head.number - prev.number)
            if per_block > 0:
                self.block_time = 0.7 * self.block_time + 0.3 * per_block
        if prev is None or head.number != prev.number:
            self.metrics.last_block_seen_at = time.time()
        self._last_head = head

    def _check_model(self, healths: dict[str, HealthTuple]) -> None:
        """Accounts whose on-chain verdict differs from the model get their model re-read."""
        if self._ranking is None:
            return
        flagged = {r.account for r in self._ranking.ranked if r.liquidatable}
        for a, h in healths.items():
            if h.liquidatable != (a in flagged):
                self.dirty.add(a)

    def _by_risk(self, accounts: Sequence[str]) -> list[str]:
        """Accounts riskiest first by the model (unknown to the model: first)."""
        order: dict[str, float] = {}
        if self._ranking is not None:
            for r in self._ranking.ranked:
                order[r.account] = r.distance
        return sorted(accounts, key=lambda a: order.get(a, -math.inf))

    # -- liquidation ----------------------------------------------------------------------------

    def _gas_targets(self, head: Head) -> tuple[int, PackingTarget]:
        """The per-transaction gas cap (a share of the block) and the batch size that fills
        blocks with whole transactions."""
        cap = gas_cap_for(head.gas_limit, self.settings.gas_fraction)
        largest = self.gas.overhead + MAX_BATCH * self.gas.estimate(1)
        target = packing_target(
            head.gas_limit,
            cap,
            largest,
            used_ratio=self.gas.used_ratio,
            margin=float(self.settings.gas_limit_margin),
        )
        return cap, target

    def _liquidate(self, head: Head, result: PassResult, targets: list[str]) -> None:
        """Plan batches by gas, simulate them (``eth_call`` and ``eth_estimateGas`` in one
        request), drop lost races and unprofitable ones, and send the rest.

        Works one block's worth of batches at a time, so the first block's transactions are on
        their way while the next ones are simulated.
        """
        assert self.state is not None
        pending = self.sender.pending() if self.sender else []
        capacity = self.settings.max_pending_txs - len(pending)
        remaining = list(targets)
        replanned = False
        while remaining and capacity > 0:
            cap, target = self._gas_targets(head)
            items = [(a, self.gas.estimate(self._positions(a))) for a in remaining]
            batches = plan_batches(
                items, target.estimate, tx_overhead_gas=self.gas.overhead, max_accounts=MAX_BATCH
            ).batches[: min(capacity, target.per_block)]
            if not batches:
                return
            outcome = self._simulate(batches, target)
            if outcome is None and not replanned:
                replanned = True  # the model was off (the first batches of a run): plan again
                continue
            plans = self._evaluate(head, result, batches, self._last_sim, cap)
            capacity -= len(batches)
            done = {a for b in batches for a in b.accounts}
            remaining = [a for a in remaining if a not in done]
            result.plans += plans
            if self.settings.dry_run or self.sender is None:
                for p in plans:
                    log.info(
                        "dry run: would liquidate",
                        extra={
                            "accounts": len(p.accounts),
                            "expected_count": p.expected_count,
                            "expected_reward_usd": p.expected_reward / WAD,
                            "gas": p.gas,
                        },
                    )
                continue
            result.sent += len(self.sender.send(head, plans))

    def _simulate(self, batches: Sequence[Any], target: PackingTarget) -> bool | None:
        """Simulate and estimate ``batches`` in one request (kept in ``_last_sim``); teach the
        gas model. ``None`` when the estimates show the batches were planned too large."""
        sender = self.signer.address if self.signer else "0x000000000000000000000000000000000000dEaD"
        calls = []
        for b in batches:
            # at "latest": a block mined during this pass shows races lost meanwhile
            calls += self.engine.liquidate_many_calls([b.accounts], sender, "latest")
            calls.append(("eth_estimateGas", [dict(calls[-1][1][0]), "latest"]))
        results = self.rpc.batch(calls)
        planned_scale = self.gas.scale
        sims: list[tuple[Any, int | None]] = []
        for i, b in enumerate(batches):
            est = results[2 * i + 1]
            gas = None if isinstance(est, RpcError) else int(est, 16)
            if gas is not None:
                self.gas.observe(b.gas, gas, planned_scale)
            sims.append((results[2 * i], gas))
        self._last_sim = sims
        if any(g is not None and g > target.estimate * 1.02 for _, g in sims):
            return None
        return True

    def _evaluate(
        self, head: Head, result: PassResult, batches: Sequence[Any], sims: Sequence[tuple[Any, int | None]], cap: int
    ) -> list[TxPlan]:
        """Plans for the batches worth sending: not lost, under the cap, and profitable."""
        margin = float(self.settings.gas_limit_margin)
        try:
            fees = self._fee_policy().fresh(head.base_fee)
        except FeeCapReached as exc:
            self.metrics.fee_cap_skips.inc(len(batches))
            log.warning("not sending: %s", exc, extra={"batches": len(batches), "base_fee": head.base_fee})
            return []
        native = self.native_usd_price()
        plans: list[TxPlan] = []
        for b, (sim, gas_used) in zip(batches, sims):
            if isinstance(sim, RpcError):
                log.warning(
                    "liquidate_many simulation reverted",
                    extra={"accounts": len(b.accounts), "error": sim.revert_reason or sim.message},
                )
                self.metrics.errors.labels(kind="simulation").inc()
                continue
            data = _bytes(sim)
            count, reward = decode_word_uint(data, 0), decode_word_uint(data, 1)
            if count == 0:
                result.lost_in_simulation += len(b.accounts)
                self.metrics.lost_races.inc(len(b.accounts))
                log.info("batch already liquidated by someone else (lost race)", extra={"accounts": len(b.accounts)})
                continue
            if gas_used is None:
                gas_used = int(b.gas * 1.25)
            gas_limit = int(gas_used * (1 + margin))
            if gas_limit > cap:
                log.info("batch above the gas cap; planned smaller next block", extra={"gas": gas_limit, "cap": cap})
                continue
            if native is not None:
                decision = evaluate_profit(
                    reward,
                    gas_used,
                    effective_gas_price(fees, head.base_fee),
                    native,
                    min_profit_usd=self.settings.min_profit_wad,
                )
                if not decision.send:
                    result.unprofitable += 1
                    self.metrics.unprofitable_skips.inc()
                    log.info("batch skipped: unprofitable", extra={"accounts": len(b.accounts), "reason": decision.reason})
                    continue
            plans.append(TxPlan(b.accounts, gas_limit, count, reward))
        return plans

    def _positions(self, account: str) -> int:
        model = self.models.get(account)
        return max(1, len(model.positions)) if model else 1

    # -- loop -----------------------------------------------------------------------------------

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop after the pass in progress (signal handler compatible)."""
        if not self.stop_event.is_set():
            log.info("stop requested; finishing the pass in progress")
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def _next_block(self) -> int | None:
        """Wait for a block after the last processed one; ``None`` when asked to stop."""
        seen_at = self.metrics.last_block_seen_at or time.time()
        first_wait = seen_at + 0.75 * min(self.block_time, 30.0) - time.time()
        if first_wait > 0 and self.stop_event.wait(first_wait):
            return None
        while not self.stop_event.is_set():
            n = int(self.rpc.request("eth_blockNumber"), 16)
            if self.processed is None or n != self.processed:
                self.metrics.head_lag.set(max(0, n - (self.processed or n)))
                return n
            self.metrics.head_lag.set(0)
            if self.stop_event.wait(self.settings.poll_interval):
                return None
        return None

    def run(self) -> int:
        """Run until stopped (or one pass with ``once``). Returns the process exit code."""
        self.serve_metrics()
        if self.settings.once:
            if self._last_head is None:
                self.start()
            return self._run_once()
        # Start-up and the first pass run inside the loop: a node that drops out right after the
        # start-up checks is waited for like any other outage, instead of ending the keeper.
        started = self._last_head is not None
        first_pass_done = False
        errors_in_row = 0
        while not self.stop_event.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                if not first_pass_done:
                    self.step(force_sweep=True)  # what is liquidatable now is not left for later
                    first_pass_done = True
                    errors_in_row = 0
                    continue
                block = self._next_block()
                if block is None:
                    break
                self.step(block)
                errors_in_row = 0
            except RpcUnavailable as exc:
                errors_in_row += 1
                self.metrics.errors.labels(kind="rpc").inc()
                log.error("node unavailable; retrying", extra={"error": str(exc)})
                self.stop_event.wait(min(30.0, 1.0 * 2 ** min(errors_in_row, 5)))
            except Exception as exc:  # noqa: BLE001 - a long-running bot logs and carries on
                if not started:
                    raise  # a start-up failure other than an outage is for the operator to fix
                errors_in_row += 1
                self.metrics.errors.labels(kind=type(exc).__name__).inc()
                log.exception("pass failed; retrying next block", extra={"error": str(exc)})
                self.stop_event.wait(min(30.0, 0.5 * 2 ** min(errors_in_row, 5)))
        log.info("keeper stopped", extra=self.summary())
        return 0

    def _run_once(self) -> int:
        result = self.step(force_sweep=True)
        deadline = time.monotonic() + self.settings.once_timeout
        while self.sender is not None and self.sender.pending() and not self.stop_event.is_set():
            if time.monotonic() > deadline:
                log.warning("--once: transactions still pending at the timeout", extra={"pending": len(self.sender.pending())})
                break
            self.stop_event.wait(min(self.settings.poll_interval, 0.5))
            head = self.engine.head()
            self.sender.refresh(head)
        log.info("one pass done", extra={"block": result.block, **self.summary()})
        return 0

    def summary(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "block": self.processed,
            "accounts_tracked": len(self.models),
            "liquidations_sent": m.value("liquidations_sent"),
            "liquidations_mined": m.value("liquidations_mined"),
            "liquidations_failed": m.value("liquidations_failed"),
            "lost_races": m.value("lost_races"),
            "unprofitable_skips": m.value("unprofitable_skips"),
            "rewards_usd": m.value("rewards_usd"),
            "pending": len(self.sender.pending()) if self.sender else 0,
        }

    def close(self) -> None:
        """Stop the metrics server and close the state and the RPC sessions."""
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.state is not None:
            self.state.close()
            self.state = None
        self.rpc.close()

    # -- scan -----------------------------------------------------------------------------------

    def scan(self) -> tuple[list[AccountRisk], dict[str, HealthTuple], Head]:
        """A read-only pass: every listed account's model ranked, and its on-chain health."""
        head = self.engine.head()
        accounts = [a for a in self.engine.account_list(head.number) if self.shard.owns(a)]
        self._refresh_models(accounts, head.number)
        self._read_prices(head.number)
        ranking = rank_accounts(self.models.values(), self.prices)
        healths, errors = self.engine.healths(accounts, head.number)
        for err in errors[:1]:
            log.warning("healths call reverted", extra={"error": err.revert_reason or err.message})
        return ranking.ranked, healths, head


def _is_range_refusal(exc: Exception) -> bool:
    return isinstance(exc, RpcError)


def _bytes(raw: Any) -> bytes:
    text = str(raw)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)
