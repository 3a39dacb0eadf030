"""A JSON-RPC fault proxy for keeper tests: a threaded HTTP server in front of a node (anvil).

It forwards single and batched JSON-RPC requests to the node and can be switched, while a keeper
runs behind it, to misbehave the way hosted providers do:

- :meth:`FaultProxy.down` / :meth:`FaultProxy.up`: the port refuses connections, then answers again;
- :meth:`FaultProxy.http_error`: answer HTTP 5xx (or 429) without forwarding;
- :meth:`FaultProxy.delay`: forward, then hold the answer (beyond a client's timeout: the node
  did the work, the client never hears of it);
- :meth:`FaultProxy.corrupt`: forward, then spoil the answer (``bad_json``, ``truncated_body``,
  ``wrong_ids``, ``truncated_results``);
- :meth:`FaultProxy.limit_log_range`: refuse ``eth_getLogs`` spanning more than N blocks with a
  provider-style error;
- :meth:`FaultProxy.fail_send`: answer ``eth_sendRawTransaction`` with an error, not forwarded;
- :meth:`FaultProxy.before_send`: run a hook just before a raw transaction is forwarded (another
  party acting first: a transaction from the same key, a competing liquidator).

Every ``eth_sendRawTransaction`` is recorded as a :class:`SentTx`, decoded (sender, nonce, fees,
target, and the accounts passed to ``liquidate_many`` / ``liquidate``) with the node's head at
that moment and the node's answer. :func:`overlapping_flights` checks from that record that no
account was ever in two transactions of one sender with different nonces while the first one was
still pending.

The proxy decodes transactions on its own (RLP, ABI), without the keeper's code, so the record is
an independent witness of what the keeper sent.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import rlp
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_utils import keccak, to_checksum_address

__all__ = ["FaultProxy", "SentTx", "overlapping_flights", "CORRUPTIONS", "SEND_ERRORS"]

LIQUIDATE_MANY = keccak(text="liquidate_many(address[])")[:4]
LIQUIDATE = keccak(text="liquidate(address)")[:4]

CORRUPTIONS = ("bad_json", "truncated_body", "wrong_ids", "truncated_results")
"""What :meth:`FaultProxy.corrupt` can do to an answer."""

SEND_ERRORS = {
    "nonce_too_low": "nonce too low",
    "underpriced": "replacement transaction underpriced",
    "insufficient_funds": "insufficient funds for gas * price + value",
}
"""Provider error messages :meth:`FaultProxy.fail_send` injects, by short name."""


@dataclass
class SentTx:
    """One ``eth_sendRawTransaction`` the proxy saw."""

    seq: int
    sender: str
    nonce: int
    tx_hash: str
    to: str | None
    accounts: tuple[str, ...]
    """Accounts passed to ``liquidate_many`` or ``liquidate`` (empty for anything else)."""
    max_fee: int
    tip: int
    gas: int
    head: int
    """The node's block number when the request arrived."""
    forwarded: bool = False
    error: str | None = None
    """The error answered (by the node or injected), ``None`` when accepted."""

    @property
    def accepted(self) -> bool:
        """Whether the transaction reached the node's pool (an "already known" answer counts)."""
        if not self.forwarded:
            return False
        return self.error is None or "already known" in self.error.lower()


@dataclass
class _Rule:
    """A fault with an optional budget: ``remaining`` uses left (``None``: until cleared)."""

    remaining: int | None
    methods: frozenset[str] | None = None
    value: Any = None

    def matches(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def use(self) -> bool:
        if self.remaining is None:
            return True
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        return True

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0


def _methods(methods: str | Sequence[str] | None) -> frozenset[str] | None:
    if methods is None:
        return None
    return frozenset([methods] if isinstance(methods, str) else methods)


def _check_count(count: int | None) -> int | None:
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1 (or None for no limit), got {count}")
    return count


@dataclass
class _Faults:
    http: _Rule | None = None
    delays: list[_Rule] = field(default_factory=list)
    corruptions: list[_Rule] = field(default_factory=list)
    log_limit: _Rule | None = None
    send_errors: list[_Rule] = field(default_factory=list)
    hooks: list[_Rule] = field(default_factory=list)


class FaultProxy:
    """A fault-injecting JSON-RPC proxy in front of ``upstream``; use as a context manager.

    :param upstream: the node's HTTP URL.
    :param port: port to listen on (a free one by default; kept across :meth:`down`/:meth:`up`).
    """

    def __init__(self, upstream: str, *, port: int = 0, upstream_timeout: float = 60.0) -> None:
        if not upstream.startswith(("http://", "https://")):
            raise ValueError(f"the proxy forwards to an HTTP URL, not {upstream!r}")
        self.upstream = upstream
        self.upstream_timeout = upstream_timeout
        self._lock = threading.RLock()
        self._faults = _Faults()
        self._seq = 0
        self.sends: list[SentTx] = []
        """Every ``eth_sendRawTransaction`` seen, in arrival order."""
        self.methods: Counter[str] = Counter()
        """JSON-RPC calls received, by method (batch items count one each)."""
        self.injected: Counter[str] = Counter()
        """Faults applied, by kind."""
        self.errors: list[str] = []
        """The proxy's own failures (a hook that raised, a transaction it cannot decode): a test
        behind a proxy that failed proves nothing, so the ``proxy`` fixture checks this is empty."""
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = port

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FaultProxy:
        """Listen (again) on the proxy's port."""
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer(("127.0.0.1", self._port), self._handler())
        httpd.daemon_threads = True
        self._port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket: new connections are refused."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def down(self) -> None:
        """The RPC is down: connections to the port are refused until :meth:`up`."""
        self.stop()

    def up(self) -> None:
        """The RPC is back, on the same port."""
        self.start()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.clear()
        self.stop()

    # -- switching faults -----------------------------------------------------------------------

    def clear(self) -> None:
        """Every fault off (a :meth:`down` proxy stays down)."""
        with self._lock:
            self._faults = _Faults()

    def http_error(self, status: int = 503, *, count: int | None = None) -> None:
        """Answer the next ``count`` HTTP requests (all, with ``None``) with ``status``."""
        if not 400 <= status <= 599:
            raise ValueError(f"an HTTP error status is 4xx or 5xx, got {status}")
        with self._lock:
            self._faults.http = _Rule(_check_count(count), value=status)

    def delay(self, seconds: float, *, methods: str | Sequence[str] | None = None, count: int | None = None) -> None:
        """Forward requests holding one of ``methods`` (any, with ``None``), then hold the answer
        ``seconds`` before sending it; for the next ``count`` such requests."""
        if seconds <= 0:
            raise ValueError(f"a delay is a positive number of seconds, got {seconds}")
        with self._lock:
            self._faults.delays.append(_Rule(_check_count(count), _methods(methods), seconds))

    def corrupt(self, kind: str, *, methods: str | Sequence[str] | None = None, count: int | None = 1) -> None:
        """Spoil the next ``count`` answers to requests holding one of ``methods``.

        ``bad_json``: a body that is not JSON; ``truncated_body``: the first half of the body;
        ``wrong_ids``: every id shifted so none matches the request; ``truncated_results``: every
        data result of 32 bytes or more (return values, hashes) cut to half its bytes.
        """
        if kind not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {kind!r}; choose one of {', '.join(CORRUPTIONS)}")
        with self._lock:
            self._faults.corruptions.append(_Rule(_check_count(count), _methods(methods), kind))

    def limit_log_range(
        self, max_blocks: int, *, message: str = "query returned more than 10000 results", code: int = -32005
    ) -> None:
        """Refuse ``eth_getLogs`` over more than ``max_blocks`` blocks, as providers do."""
        if max_blocks < 1:
            raise ValueError(f"max_blocks must be at least 1, got {max_blocks}")
        with self._lock:
            self._faults.log_limit = _Rule(None, value=(max_blocks, code, message))

    def fail_send(self, error: str, *, count: int | None = 1, code: int = -32000) -> None:
        """Answer the next ``count`` raw transactions with ``error`` (a key of
        :data:`SEND_ERRORS` or a message) instead of forwarding them."""
        message = SEND_ERRORS.get(error, error)
        if not message:
            raise ValueError("fail_send needs an error message")
        with self._lock:
            self._faults.send_errors.append(_Rule(_check_count(count), value=(code, message)))

    def before_send(self, hook: Callable[[SentTx], None], *, count: int | None = 1) -> None:
        """Call ``hook(tx)`` before forwarding each of the next ``count`` raw transactions."""
        with self._lock:
            self._faults.hooks.append(_Rule(_check_count(count), value=hook))

    # -- record -----------------------------------------------------------------------------------

    def sent_accounts(self, *, accepted_only: bool = True) -> Counter[str]:
        """How many distinct nonces each account was sent in (accepted sends only by default)."""
        nonces: dict[str, set[tuple[str, int]]] = defaultdict(set)
        for tx in self.sends:
            if tx.accepted or not accepted_only:
                for a in tx.accounts:
                    nonces[a].add((tx.sender, tx.nonce))
        return Counter({a: len(n) for a, n in nonces.items()})

    # -- forwarding -------------------------------------------------------------------------------

    def _forward(self, payload: Any) -> Any:
        body = json.dumps(payload).encode()
        req = urllib.request.Request(self.upstream, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.upstream_timeout) as resp:
            return json.loads(resp.read())

    def _call(self, method: str, params: list[Any]) -> Any:
        answer = self._forward({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def _take_any(self, rules: list[_Rule], methods: Sequence[str]) -> _Rule | None:
        """The first live rule matching any of ``methods``, used once (one rule per request)."""
        for rule in rules:
            if not rule.spent and any(rule.matches(m) for m in methods) and rule.use():
                return rule
        return None

    def _log_refusal(self, item: dict[str, Any], head: Callable[[], int]) -> dict[str, Any] | None:
        rule = self._faults.log_limit
        if rule is None or item.get("method") != "eth_getLogs":
            return None
        params = item.get("params") or [{}]
        flt = params[0] if params and isinstance(params[0], dict) else {}
        if "blockHash" in flt:
            return None

        def number(tag: Any) -> int:
            if tag in (None, "latest", "pending", "safe", "finalized"):
                return head()
            if tag == "earliest":
                return 0
            return int(tag, 16)

        span = number(flt.get("toBlock")) - number(flt.get("fromBlock", "latest")) + 1
        max_blocks, code, message = rule.value
        if span <= max_blocks:
            return None
        self.injected["log_range_refused"] += 1
        return {"code": code, "message": message}

    def _decode_send(self, item: dict[str, Any], head: int) -> SentTx:
        raw = bytes.fromhex(str(item["params"][0])[2:])
        with self._lock:
            self._seq += 1
            seq = self._seq
        if raw[0] == 2:
            fields = rlp.decode(raw[1:])
            nonce, tip, max_fee, gas, to, data = fields[1], fields[2], fields[3], fields[4], fields[5], fields[7]
        elif raw[0] >= 0xC0:
            fields = rlp.decode(raw)
            nonce, price, gas, to, data = fields[0], fields[1], fields[2], fields[3], fields[5]
            tip = max_fee = price
        else:
            raise ValueError(f"the proxy decodes legacy and EIP-1559 transactions, not type {raw[0]}")
        as_int = lambda b: int.from_bytes(b, "big")  # noqa: E731
        return SentTx(
            seq=seq,
            sender=to_checksum_address(Account.recover_transaction(raw)),
            nonce=as_int(nonce),
            tx_hash="0x" + keccak(raw).hex(),
            to=to_checksum_address(to) if to else None,
            accounts=_liquidated_accounts(bytes(data)),
            max_fee=as_int(max_fee),
            tip=as_int(tip),
            gas=as_int(gas),
            head=head,
        )

    def handle(self, body: bytes) -> tuple[int, bytes]:
        """Answer one HTTP request body: ``(status, body)``."""
        with self._lock:
            rule = self._faults.http
            if rule is not None and not rule.spent and rule.use():
                self.injected[f"http_{rule.value}"] += 1
                return rule.value, b'{"error": "service unavailable"}'
        try:
            payload = json.loads(body)
        except ValueError:
            return 400, b'{"error": "the proxy got a body that is not JSON"}'
        batch = isinstance(payload, list)
        items = payload if batch else [payload]
        cached_head: list[int] = []

        def head() -> int:
            if not cached_head:
                cached_head.append(int(self._call("eth_blockNumber", []), 16))
            return cached_head[0]

        answers: dict[int, dict[str, Any]] = {}
        forward: list[dict[str, Any]] = []
        sends: dict[int, SentTx] = {}
        with self._lock:
            for i, item in enumerate(items):
                method = str(item.get("method"))
                self.methods[method] += 1
                error = self._log_refusal(item, head)
                if method == "eth_sendRawTransaction":
                    tx = self._decode_send(item, head())
                    self.sends.append(tx)
                    sends[i] = tx
                    injected = self._take_any(self._faults.send_errors, [method])
                    if injected is not None:
                        code, message = injected.value
                        error = {"code": code, "message": message}
                        tx.error = message
                        self.injected["send_error"] += 1
                if error is not None:
                    answers[i] = {"jsonrpc": "2.0", "id": item.get("id"), "error": error}
                else:
                    forward.append(item)
            hooks = []
            for i, tx in sends.items():
                rule = None if i in answers else self._take_any(self._faults.hooks, ["eth_sendRawTransaction"])
                if rule is not None:
                    hooks.append((rule.value, tx))
        for hook, tx in hooks:
            hook(tx)
        if forward:
            try:
                got = self._forward(forward if batch else forward[0])
            except (urllib.error.URLError, OSError) as exc:
                return 502, json.dumps({"error": f"upstream unreachable: {exc}"}).encode()
            got_list = got if isinstance(got, list) else [got]
            by_id = {json.dumps(a.get("id")): a for a in got_list}
            for i, item in enumerate(items):
                if i not in answers:
                    answers[i] = by_id.get(json.dumps(item.get("id"))) or {
                        "jsonrpc": "2.0",
                        "id": item.get("id"),
                        "error": {"code": -32603, "message": "the node sent no answer for this call"},
                    }
                    if i in sends:
                        sends[i].forwarded = True
                        err = answers[i].get("error")
                        sends[i].error = None if not err else str(err.get("message"))
        ordered = [answers[i] for i in range(len(items))]
        methods = [str(item.get("method")) for item in items]
        with self._lock:
            delay = self._take_any(self._faults.delays, methods)
            corruption = self._take_any(self._faults.corruptions, methods)
        if delay is not None:
            self.injected["delay"] += 1
            threading.Event().wait(delay.value)
        out: Any = ordered if batch else ordered[0]
        if corruption is None:
            return 200, json.dumps(out).encode()
        self.injected[corruption.value] += 1
        return 200, _spoil(corruption.value, out)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    status, body = proxy.handle(self.rfile.read(length))
                except Exception as exc:  # noqa: BLE001 - kept for the test to fail on
                    proxy.errors.append(f"{type(exc).__name__}: {exc}")
                    status, body = 500, json.dumps({"error": f"fault proxy: {exc}"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (its timeout): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        return Handler


def _liquidated_accounts(data: bytes) -> tuple[str, ...]:
    if data[:4] == LIQUIDATE_MANY:
        return tuple(to_checksum_address(a) for a in abi_decode(["address[]"], data[4:])[0])
    if data[:4] == LIQUIDATE:
        return (to_checksum_address(abi_decode(["address"], data[4:])[0]),)
    return ()


def _spoil(kind: str, answer: Any) -> bytes:
    """The body of ``answer`` spoiled by ``kind``."""
    if kind == "bad_json":
        return b"<html><body>502 Bad Gateway</body></html>"
    if kind == "truncated_body":
        text = json.dumps(answer).encode()
        return text[: len(text) // 2]
    for item in answer if isinstance(answer, list) else [answer]:
        if kind == "wrong_ids" and isinstance(item.get("id"), int):
            item["id"] += 1_000_000
        result = item.get("result")
        if kind == "truncated_results" and isinstance(result, str) and len(result) >= 66:
            nbytes = (len(result) - 2) // 2  # data (return values, hashes), not short quantities
            item["result"] = result[: 2 + 2 * (nbytes // 2)]
    return json.dumps(answer).encode()


def overlapping_flights(sends: Sequence[SentTx], rpc: Any) -> list[str]:
    """Accounts sent by one sender in two transactions with different nonces while the first
    one was still pending; one line per offence (empty: none).

    A transaction at nonce ``n`` stops being pending once the sender's mined nonce count passes
    ``n`` (mined, or the nonce taken by another transaction). A later send of the same account at
    another nonce is an offence unless, at the node's head when it arrived, the count was already
    past ``n``. Sends the node refused never were in flight; replacements (same nonce) are fine.

    :param rpc: something with ``request(method, params)`` against the node (not the proxy).
    """
    counts: dict[tuple[str, int], int] = {}

    def mined_count(sender: str, block: int) -> int:
        key = (sender, block)
        if key not in counts:
            counts[key] = int(rpc.request("eth_getTransactionCount", [sender, hex(block)]), 16)
        return counts[key]

    offences = []
    flights: dict[tuple[str, str], list[SentTx]] = defaultdict(list)
    for tx in sorted(sends, key=lambda t: t.seq):
        if not tx.accepted:
            continue
        for a in tx.accounts:
            earlier = flights[(tx.sender, a)]
            for old in earlier:
                if old.nonce != tx.nonce and mined_count(tx.sender, tx.head) <= old.nonce:
                    offences.append(
                        f"{a}: sent at nonce {tx.nonce} (head {tx.head}) while nonce {old.nonce} "
                        f"(sent at head {old.head}) was still pending"
                    )
            earlier.append(tx)
    return offences
