"""Prometheus metrics, the /metrics and /healthz server, and JSON log lines (no chain)."""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request

from keeper.jsonlog import JsonFormatter, setup_logging
from keeper.metrics import KeeperMetrics, MetricsServer


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_two_keepers_in_one_process__have_separate_counters() -> None:
    a, b = KeeperMetrics(), KeeperMetrics()
    a.lost_races.inc(3)
    assert a.value("lost_races") == 3 and b.value("lost_races") == 0


def test_server__metrics_and_health() -> None:
    metrics = KeeperMetrics()
    metrics.liquidations_mined.inc(2)
    metrics.accounts_tracked.set(40)
    healthy = {"ok": False}
    server = MetricsServer(metrics, "127.0.0.1", 0, lambda: (healthy["ok"], {"block": 7})).start()
    try:
        status, body = _get(server.port, "/metrics")
        assert status == 200
        assert "ballast_keeper_liquidations_mined_total 2.0" in body
        assert "ballast_keeper_accounts_tracked 40.0" in body
        assert "ballast_keeper_seconds_since_last_block" in body
        status, body = _get(server.port, "/healthz")
        assert status == 503 and json.loads(body) == {"status": "unhealthy", "block": 7}
        healthy["ok"] = True
        status, body = _get(server.port, "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert _get(server.port, "/other")[0] == 404
    finally:
        server.stop()


def test_json_logs__one_object_per_line_with_extras() -> None:
    stream = io.StringIO()
    setup_logging("INFO", json_lines=True, stream=stream)
    try:
        logging.getLogger("keeper.test").info("liquidation sent", extra={"nonce": 7, "accounts": 190})
        logging.getLogger("keeper.test").debug("hidden")
    finally:
        setup_logging("INFO", json_lines=True)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["msg"] == "liquidation sent" and record["nonce"] == 7 and record["accounts"] == 190
    assert record["level"] == "info" and record["logger"] == "keeper.test" and record["ts"].endswith("Z")


def test_json_formatter__exception_included() -> None:
    try:
        raise ValueError("bad")
    except ValueError:
        import sys

        rec = logging.LogRecord("keeper", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(JsonFormatter().format(rec))
    assert "ValueError: bad" in out["exc"]
