"""JSON-RPC transport: batches, per-call errors, retries with backoff, failover (a fake node)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_abi import encode as abi_encode

from keeper.localchain import free_port
from keeper.rpc import Rpc, RpcError, RpcUnavailable, redact_url

REVERT_DATA = "0x08c379a0" + abi_encode(["string"], ["engine: not liquidatable"]).hex()


class FakeNode:
    """A JSON-RPC server: ``echo`` returns its first param, ``fail`` and ``revert`` error out.

    ``script`` is a list of HTTP statuses to answer with before behaving (e.g. ``[500, 500]``);
    ``max_batch`` answers larger batches with one error object; ``batches=False`` answers every
    batch with one error object.
    """

    def __init__(self) -> None:
        self.script: list[int] = []
        self.max_batch: int | None = None
        self.batches = True
        self.seen: list[Any] = []
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.seen.append(body)
                if node.script:
                    status = node.script.pop(0)
                    self._send(status, b'{"oops": true}')
                    return
                if isinstance(body, list):
                    if not node.batches or (node.max_batch is not None and len(body) > node.max_batch):
                        msg = "batch too large" if node.batches else "method not found: batch"
                        self._json({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": msg}})
                        return
                    self._json([node.answer(r) for r in reversed(body)])  # any order: ids count
                else:
                    self._json(node.answer(body))

            def _json(self, obj: Any) -> None:
                self._send(200, json.dumps(obj).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def answer(self, req: dict[str, Any]) -> dict[str, Any]:
        base = {"jsonrpc": "2.0", "id": req["id"]}
        if req["method"] == "echo":
            return {**base, "result": req["params"][0]}
        if req["method"] == "revert":
            return {**base, "error": {"code": 3, "message": "execution reverted", "data": REVERT_DATA}}
        return {**base, "error": {"code": -32000, "message": "boom"}}

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def node() -> Iterator[FakeNode]:
    n = FakeNode()
    yield n
    n.stop()


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_batch__results_in_order__errors_in_their_slots(node: FakeNode) -> None:
    rpc = Rpc([node.url])
    out = rpc.batch([("echo", [1]), ("fail", []), ("echo", ["x"]), ("revert", [])])
    assert out[0] == 1 and out[2] == "x"
    assert isinstance(out[1], RpcError) and out[1].message == "boom" and not out[1].is_revert
    assert isinstance(out[3], RpcError) and out[3].is_revert
    assert out[3].revert_reason == "engine: not liquidatable"
    assert rpc.stats.requests == 1 and rpc.stats.calls == 4 and rpc.stats.by_method["echo"] == 2


def test_batch__split_by_batch_size(node: FakeNode) -> None:
    rpc = Rpc([node.url], batch_size=3)
    assert rpc.batch([("echo", [i]) for i in range(7)]) == list(range(7))
    assert [len(b) if isinstance(b, list) else 1 for b in node.seen] == [3, 3, 1]


def test_request__raises_the_node_error(node: FakeNode) -> None:
    rpc = Rpc([node.url])
    assert rpc.request("echo", [5]) == 5
    with pytest.raises(RpcError, match="boom"):
        rpc.request("fail")


def test_transport_failure__retried_with_growing_backoff(node: FakeNode) -> None:
    node.script = [500, 502, 429]
    sleeps = Sleeps()
    rpc = Rpc([node.url], retries=4, backoff=0.1, sleep=sleeps)
    assert rpc.request("echo", ["ok"]) == "ok"
    assert rpc.stats.transport_errors == 3 and len(sleeps) == 3
    assert sleeps[0] < sleeps[2] and all(0.07 <= s <= 0.6 for s in sleeps)


def test_dead_primary__fails_over_to_the_fallback_and_back_later(node: FakeNode) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    sleeps = Sleeps()
    rpc = Rpc([dead, node.url], retries=2, sleep=sleeps, recheck_primary=3600)
    assert rpc.batch([("echo", [1]), ("echo", [2])]) == [1, 2]
    assert rpc.stats.failovers == 1 and rpc.url == node.url
    assert rpc.request("echo", [3]) == 3 and rpc.stats.failovers == 1  # stays on the fallback
    rpc.recheck_primary = 0  # time to try the primary again: it is still dead
    assert rpc.request("echo", [4]) == 4 and rpc.stats.failovers == 2


def test_every_url_dead__one_readable_error_naming_them(node: FakeNode) -> None:
    a, b = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    rpc = Rpc([a, b], retries=3, sleep=Sleeps())
    with pytest.raises(RpcUnavailable) as info:
        rpc.request("echo", [1])
    msg = str(info.value)
    assert a in msg and b in msg and "4 attempts" in msg and "connection refused" in msg


def test_http_403__not_retried(node: FakeNode) -> None:
    node.script = [403]
    sleeps = Sleeps()
    with pytest.raises(RpcUnavailable, match="refused the request"):
        Rpc([node.url], retries=3, sleep=sleeps).request("echo", [1])
    assert sleeps == []


def test_batch_too_large__halved_until_accepted(node: FakeNode) -> None:
    node.max_batch = 2
    rpc = Rpc([node.url], batch_size=8)
    assert rpc.batch([("echo", [i]) for i in range(5)]) == list(range(5))
    assert rpc.batch_size == 2


def test_node_without_batches__calls_sent_one_by_one(node: FakeNode) -> None:
    node.batches = False
    rpc = Rpc([node.url])
    assert rpc.batch([("echo", [i]) for i in range(3)]) == [0, 1, 2]
    assert rpc.batch([("echo", [9]), ("echo", [8])]) == [9, 8]
    assert sum(isinstance(b, list) for b in node.seen) == 1  # tried once, then remembered


def test_redact_url__hides_keys_in_paths_queries_and_user_info() -> None:
    assert redact_url("https://eth-mainnet.g.alchemy.com/v2/SECRETKEY") == "https://eth-mainnet.g.alchemy.com/..."
    assert redact_url("https://user:pw@node.example:8545") == "https://node.example:8545"
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert "k=1" not in redact_url("https://x.io/?k=1")
