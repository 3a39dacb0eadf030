"""A lean JSON-RPC client for a local anvil: one kept-alive HTTP connection, batches, and the few
node calls the fuzz harness needs (calls, transactions from unlocked accounts, snapshots, time).

Anvil answers the calls of one batch concurrently, not in order, so a batch here only ever holds
reads of one state. A transaction goes alone, through `eth_sendTransactionSync` (EIP-7966), which
answers with the receipt once the transaction is mined: one round trip, no polling.
"""

from __future__ import annotations

import http.client
import json
import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from keeper.rpc import RpcError

GAS = 10_000_000


class Reverted(Exception):
    """A call or transaction reverted; `reason` is its Error(string), or None."""

    def __init__(self, reason: str | None):
        super().__init__(reason or "<no reason>")
        self.reason = reason


@dataclass
class Sent:
    """A mined transaction: what its simulation returned, and its receipt."""

    returned: bytes
    receipt: dict[str, Any]
    value: Any = None  # the decoded return value
    logs: list = field(default_factory=list)  # the decoded events


class Rpc:
    """JSON-RPC over one persistent HTTP/1.1 connection, each request written in one segment with
    Nagle off (http.client writes headers and body apart, which costs a wake-up per request)."""

    def __init__(self, url: str, timeout: float = 60.0):
        u = urlparse(url)
        self._address = (u.hostname, u.port)
        self._timeout = timeout
        self._head = f"POST / HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Type: application/json\r\nContent-Length: ".encode()
        self._sock: socket.socket | None = None
        self._id = 0
        self.requests = 0

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=self._timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _post(self, body: Any, retry: bool = True) -> Any:
        """Sends one request; a failed read-only one is tried once more on a fresh connection (the
        node may drop an idle one), a transaction never (it may have been mined)."""
        data = json.dumps(body).encode()
        message = self._head + str(len(data)).encode() + b"\r\n\r\n" + data
        self.requests += 1
        for attempt in (1, 2):
            if self._sock is None:
                self._sock = self._connect()
            try:
                self._sock.sendall(message)
                response = http.client.HTTPResponse(self._sock)
                response.begin()
                payload = response.read()
            except (http.client.HTTPException, OSError):
                self._sock.close()
                self._sock = None
                if attempt == 2 or not retry:
                    raise
                continue
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status} from the node: {payload[:200]!r}")
            return json.loads(payload)

    def request(self, method: str, params: list[Any]) -> Any:
        out = _result(method, self._post(self._item(method, params), retry=not method.startswith("eth_send")))
        if isinstance(out, RpcError):
            raise out
        return out

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Results in order; a failed call leaves its RpcError in its slot."""
        if not calls:
            return []
        answers = {a["id"]: a for a in self._post([self._item(m, p) for m, p in calls])}
        first = self._id - len(calls) + 1
        return [_result(m, answers[first + i]) for i, (m, _) in enumerate(calls)]

    def _item(self, method: str, params: list[Any]) -> dict[str, Any]:
        self._id += 1
        return {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}


def _result(method: str, answer: dict[str, Any]) -> Any:
    err = answer.get("error")
    if err is not None:
        return RpcError(method, err.get("code"), str(err.get("message", "")), err.get("data"))
    return answer["result"]


def _bytes(hex_str: str) -> bytes:
    return bytes.fromhex(hex_str[2:])


class Node:
    """The node operations of the harness, over :class:`Rpc`."""

    def __init__(self, url: str):
        self.rpc = Rpc(url)

    def calls(self, calls: list[tuple[str, str]]) -> list[Any]:
        """eth_call of each `(to, data)` at the latest block, in one request: the return data, or
        Reverted, of each."""
        out = self.rpc.batch([("eth_call", [{"to": to, "data": data}, "latest"]) for to, data in calls])
        return [_bytes(r) if isinstance(r, str) else _reverted(r) for r in out]

    def transact(self, sender: str, to: str, data: str) -> Sent:
        """Simulates the transaction, then sends it if the simulation passed, from an unlocked
        account, and waits for it to be mined.

        :raises Reverted: with the simulation's reason; nothing is sent then.
        :raises AssertionError: if the simulation passed and the mined transaction reverted.
        """
        tx = {"from": sender, "to": to, "data": data, "gas": hex(GAS)}
        try:
            returned = _bytes(self.rpc.request("eth_call", [tx, "latest"]))
        except RpcError as e:
            raise _reverted(e) from None
        receipt = self.rpc.request("eth_sendTransactionSync", [tx])
        assert int(receipt["status"], 16) == 1, f"simulated fine, mined reverted: {receipt['transactionHash']}"
        return Sent(returned, receipt)

    def snapshot(self) -> str:
        return self.rpc.request("evm_snapshot", [])

    def revert(self, snapshot_id: str) -> None:
        if not self.rpc.request("evm_revert", [snapshot_id]):
            raise RuntimeError(f"evm_revert({snapshot_id}) refused")

    def increase_time(self, seconds: int) -> None:
        self.rpc.request("evm_increaseTime", [hex(seconds)])


def _reverted(err: RpcError) -> Reverted:
    if not err.is_revert:
        raise err
    return Reverted(err.revert_reason)
