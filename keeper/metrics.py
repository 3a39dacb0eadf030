"""Prometheus metrics and the ``/metrics`` + ``/healthz`` HTTP endpoints.

Each keeper owns its registry (two keepers in one process, as in the tests, do not share
counters). ``/healthz`` answers 200 while the main loop has finished a pass recently (within
``max_age`` seconds) and 503 otherwise, with a small JSON body either way.

Units: USD amounts in dollars (floats, for dashboards; exact WAD figures are in the logs), ETH in
ether, durations in seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["KeeperMetrics", "MetricsServer"]

_NS = "ballast_keeper"


class KeeperMetrics:
    """Every metric of one keeper, in its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.last_block_seen_at: float | None = None
        self.last_pass_at: float | None = None

        def g(name: str, doc: str, **kw: Any) -> Gauge:
            return Gauge(f"{_NS}_{name}", doc, registry=r, **kw)

        def c(name: str, doc: str, **kw: Any) -> Counter:
            return Counter(f"{_NS}_{name}", doc, registry=r, **kw)

        self.head_block = g("head_block", "Latest block number the keeper processed.")
        self.head_lag = g("head_lag_blocks", "Node head minus the last block the keeper processed.")
        self.seconds_since_block = g(
            "seconds_since_last_block", "Seconds since the keeper last saw a new block."
        )
        self.seconds_since_block.set_function(self._since_block)
        self.accounts_tracked = g("accounts_tracked", "Accounts with positions this keeper watches.")
        self.liquidatable_seen = g(
            "liquidatable_seen", "Accounts found liquidatable on-chain in the last pass."
        )
        self.liquidatable_found = c(
            "liquidatable_found", "Liquidatable accounts found, summed over passes."
        )
        self.pending_txs = g("pending_transactions", "Keeper transactions sent and not yet final.")
        self.liquidations_sent = c("liquidations_sent", "Accounts put in a sent liquidation transaction.")
        self.transactions_sent = c("transactions_sent", "Transactions broadcast (replacements included).")
        self.liquidations_mined = c("liquidations_mined", "Accounts liquidated by this keeper, from receipts.")
        self.liquidations_failed = c(
            "liquidations_failed",
            "Accounts in a liquidation transaction that reverted or could not be broadcast.",
        )
        self.lost_races = c(
            "lost_races",
            "Accounts another liquidator got first (simulated count 0, or absent from our receipt).",
        )
        self.unprofitable_skips = c("unprofitable_skips", "Batches not sent because the reward did not pay the gas.")
        self.fee_cap_skips = c(
            "fee_cap_skips", "Batches not sent because the base fee was above the fee cap (--max-fee-gwei)."
        )
        self.replacements = c("replacements", "Stuck transactions replaced with higher fees.")
        self.cancellations = c("cancellations", "Pending transactions cancelled at start-up.")
        self.rewards_usd = c("rewards_usd", "Liquidation rewards earned, USD (from Liquidation events).")
        self.gas_spent_eth = c("gas_spent_eth", "Gas paid for mined keeper transactions, in ether.")
        self.gas_used = c("gas_used", "Gas used by mined keeper transactions.")
        self.signer_balance_eth = g("signer_balance_eth", "Native balance of the signer, in ether.")
        self.model_misses = c(
            "model_misses", "Liquidatable accounts the local model did not flag (found by the sweep)."
        )
        self.rpc_requests = c("rpc_requests", "RPC round trips.", labelnames=["endpoint", "outcome"])
        self.rpc_calls = c("rpc_calls", "JSON-RPC calls (batch items count one each).")
        self.rpc_failovers = c("rpc_failovers", "Switches between RPC URLs after a failure.")
        self.rpc_errors = c(
            "rpc_errors",
            "RPC transport failures by kind: timeout, connection_refused, connection, http_5xx, "
            "http_429, http_4xx, malformed (not JSON, ids or results that do not fit the request), other.",
            labelnames=["kind"],
        )
        self.send_errors = c(
            "send_errors",
            "Raw transactions the node refused, by kind: nonce_too_low, underpriced, "
            "insufficient_funds, fee_too_low, other.",
            labelnames=["kind"],
        )
        self.log_ranges_refused = c(
            "log_ranges_refused", "eth_getLogs block ranges the provider refused (the range then shrinks)."
        )
        self.reorgs_detected = c(
            "reorgs_detected", "Chain reorganizations seen (a processed block replaced by another)."
        )
        self.errors = c("errors", "Passes that failed with an error (the loop retries).", labelnames=["kind"])
        self.scan_duration = Histogram(
            f"{_NS}_scan_duration_seconds",
            "Time of one pass over a block (read, rank, confirm, simulate, send).",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.sweep_duration = Histogram(
            f"{_NS}_sweep_duration_seconds",
            "Time of a full sweep of every account on-chain.",
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.sweep_accounts = g("sweep_accounts", "Accounts checked by the last full sweep.")

    def _since_block(self) -> float:
        if self.last_block_seen_at is None:
            return float("nan")
        return time.time() - self.last_block_seen_at

    def value(self, name: str, **labels: str) -> float:
        """The current value of a sample (``name`` without the namespace), for tests and logs."""
        full = f"{_NS}_{name}"
        v = self.registry.get_sample_value(full, labels or None)
        if v is None:
            v = self.registry.get_sample_value(full + "_total", labels or None)
        return 0.0 if v is None else float(v)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """A small threaded HTTP server for ``/metrics`` and ``/healthz``.

    :param health: returns ``(healthy, details)`` for ``/healthz``.
    """

    def __init__(
        self,
        metrics: KeeperMetrics,
        host: str,
        port: int,
        health: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        self.metrics = metrics
        self.health = health
        handler = self._handler()
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, name="keeper-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body = server.metrics.render()
                    self._reply(200, body, CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok, details = server.health()
                    body = json.dumps({"status": "ok" if ok else "unhealthy", **details}).encode()
                    self._reply(200 if ok else 503, body, "application/json")
                else:
                    self._reply(404, b"not found: try /metrics or /healthz\n", "text/plain")

            def _reply(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # scrapes are not worth a log line each

        return Handler
