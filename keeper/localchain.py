"""Local anvil chains for tests, benchmarks and demos: start a node, fill it with traders fast.

Nothing here is used by the running keeper. It exists so that integration tests, the benchmark
(``scripts/bench_keeper.py``) and demos open thousands of real positions through the engine's own
``deposit`` and ``trade`` (no storage writes), quickly:

- transactions go out as JSON-RPC batches of ``eth_sendTransaction`` from impersonated accounts
  (anvil's ``anvil_autoImpersonateAccount``), so thousands of traders need no keys or signatures;
- with automatic mining off, blocks are mined with ``anvil_mine`` as soon as the pool holds work,
  as full as the block gas limit allows, instead of waiting for the block time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from keeper.rpc import Rpc, RpcError

__all__ = [
    "free_port",
    "find_anvil",
    "Anvil",
    "DevChain",
    "TraderSpec",
    "selector_call",
    "MAX_UINT256",
]

MAX_UINT256 = 2**256 - 1


def free_port() -> int:
    """A TCP port that is free now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_anvil() -> str:
    """The anvil executable: ``$ANVIL``, then PATH, then the project's npm package."""
    if os.environ.get("ANVIL"):
        return os.environ["ANVIL"]
    found = shutil.which("anvil")
    if found:
        return found
    here = Path(__file__).resolve().parent.parent
    candidate = here / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
    if candidate.is_file():
        return str(candidate)
    raise FileNotFoundError("anvil not found: put it on PATH or set ANVIL")


class Anvil:
    """An anvil subprocess on a free port; use as a context manager.

    :param block_time: seconds between blocks (interval mining); ``None`` mines on each tx.
    :param args: more command-line arguments.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        block_time: float | None = None,
        chain_id: int | None = None,
        args: Sequence[str] = (),
        startup_timeout: float = 20.0,
    ) -> None:
        self.port = port or free_port()
        self.block_time = block_time
        self.chain_id = chain_id
        self.args = list(args)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [find_anvil(), "--port", str(self.port), "--silent"]
        if self.block_time is not None:
            cmd += ["--block-time", str(self.block_time)]
        if self.chain_id is not None:
            cmd += ["--chain-id", str(self.chain_id)]
        return cmd + self.args

    def start(self) -> Anvil:
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        rpc = Rpc([self.url], timeout=2.0, retries=0)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"anvil exited at start: {err.strip()}")
            try:
                rpc.request("eth_chainId")
                return self
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"anvil did not answer on {self.url}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def selector_call(signature: str, types: Sequence[str] = (), args: Sequence[Any] = ()) -> str:
    """Calldata for ``signature`` (e.g. ``"trade(uint256,int256,uint256)"``)."""
    body = abi_encode(list(types), list(args)) if types else b""
    return "0x" + (keccak(text=signature)[:4] + body).hex()


@dataclass(frozen=True)
class TraderSpec:
    """A trader to open: collateral in token units, then trades ``(market_id, size_wad)``."""

    address: str
    collateral: int
    trades: tuple[tuple[int, int], ...]


class DevChain:
    """Raw JSON-RPC helpers for a local anvil: mining control and fast bulk transactions."""

    def __init__(self, rpc: Rpc | str) -> None:
        self.rpc = rpc if isinstance(rpc, Rpc) else Rpc([rpc], timeout=120.0, retries=2)
        self._nonces: dict[str, int] = {}
        self.hold_base_fee: int | None = None
        """When set, every block mined by :meth:`mine` gets this base fee (wei)."""

    # -- node control -----------------------------------------------------------------------

    def automine(self, on: bool) -> None:
        self.rpc.request("evm_setAutomine", [on])

    def interval_mining(self, seconds: int) -> None:
        """Mine every ``seconds`` (``0`` turns interval mining off)."""
        self.rpc.request("evm_setIntervalMining", [seconds])

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks now. During bulk set-up the base fee is held (see
        :attr:`hold_base_fee`), so that hundreds of full blocks do not price everything out."""
        if self.hold_base_fee is not None:
            self.rpc.batch(
                [
                    ("anvil_setNextBlockBaseFeePerGas", [hex(self.hold_base_fee)]),
                    ("anvil_mine", [hex(blocks)]),
                ]
            )
        else:
            self.rpc.request("anvil_mine", [hex(blocks)])

    def block_number(self) -> int:
        return int(self.rpc.request("eth_blockNumber"), 16)

    def gas_limit(self) -> int:
        return int(self.rpc.request("eth_getBlockByNumber", ["latest", False])["gasLimit"], 16)

    def pending_count(self) -> int:
        status = self.rpc.request("txpool_status")
        return int(status["pending"], 16) + int(status["queued"], 16)

    def impersonate_all(self, on: bool = True) -> None:
        self.rpc.request("anvil_autoImpersonateAccount", [on])

    def set_balances(self, addresses: Iterable[str], wei: int) -> None:
        self.rpc.batch([("anvil_setBalance", [a, hex(wei)]) for a in addresses])

    def snapshot(self) -> str:
        return str(self.rpc.request("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.rpc.request("evm_revert", [snapshot_id]))

    # -- transactions -----------------------------------------------------------------------

    def _next_nonce(self, sender: str) -> int:
        key = sender.lower()
        if key not in self._nonces:
            self._nonces[key] = int(
                self.rpc.request("eth_getTransactionCount", [sender, "pending"]), 16
            )
        n = self._nonces[key]
        self._nonces[key] = n + 1
        return n

    def forget_nonces(self) -> None:
        self._nonces.clear()

    def send_many(self, txs: Sequence[dict[str, Any]], *, fee: int | None = None) -> list[str]:
        """Send ``eth_sendTransaction`` for each tx (``from``, ``to``, ``data``, ``gas``) in
        batches, without waiting; nonces are assigned here. Returns the hashes.

        :raises RuntimeError: naming the first refused transaction.
        """
        if fee is None:
            block = self.rpc.request("eth_getBlockByNumber", ["pending", False]) or self.rpc.request(
                "eth_getBlockByNumber", ["latest", False]
            )
            base = int(block.get("baseFeePerGas") or "0x0", 16)
            fee = 2 * max(base, self.hold_base_fee or 0) + 10**9
        calls = []
        for tx in txs:
            full = {
                "from": tx["from"],
                "to": tx["to"],
                "data": tx.get("data", "0x"),
                "gas": hex(tx.get("gas", 500_000)),
                "value": hex(tx.get("value", 0)),
                "maxFeePerGas": hex(fee),
                "maxPriorityFeePerGas": hex(min(fee, 10**9)),
                "nonce": hex(self._next_nonce(tx["from"])),
            }
            calls.append(("eth_sendTransaction", [full]))
        results = self.rpc.batch(calls)
        for i, r in enumerate(results):
            if isinstance(r, RpcError):
                raise RuntimeError(f"transaction {i} ({txs[i].get('from')}) refused: {r}")
        return [str(r) for r in results]

    def receipts(self, hashes: Sequence[str]) -> list[dict[str, Any] | None]:
        return [
            None if isinstance(r, RpcError) else r
            for r in self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        ]

    def mine_until_done(self, hashes: Sequence[str], *, timeout: float = 120.0, manual: bool = True) -> list[dict[str, Any]]:
        """Mine (``manual``) or wait until every hash has a receipt; returns the receipts.

        :raises RuntimeError: if one reverted or the timeout passes.
        """
        deadline = time.monotonic() + timeout
        found: dict[str, dict[str, Any]] = {}
        # transactions already in the pool that cannot be mined (underpriced) are not ours to wait for
        baseline = max(0, self.pending_count() - len(hashes)) if manual else 0
        while True:
            if manual:
                while self.pending_count() > baseline:
                    self.mine(1)
                    if time.monotonic() > deadline:
                        break
            waiting = _pending(hashes, found)
            for h, r in zip(waiting, self.receipts(waiting)):
                if r is not None:
                    found[h] = r
            if len(found) == len(hashes):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(hashes) - len(found)} transactions not mined after {timeout} s")
            if manual:
                self.mine(1)
            else:
                time.sleep(0.2)
        bad = [h for h in hashes if int(found[h]["status"], 16) != 1]
        if bad:
            raise RuntimeError(f"{len(bad)} transactions reverted, first {bad[0]}")
        return [found[h] for h in hashes]

    # -- Ballast ----------------------------------------------------------------------------

    def open_traders(
        self,
        record: dict[str, Any],
        specs: Sequence[TraderSpec],
        *,
        funder: str,
        manual_mining: bool = True,
        trader_eth: int = 10**18,
    ) -> None:
        """Fund and open every trader of ``specs`` through ``deposit`` and ``trade``.

        ``funder`` (an unlocked or impersonated account) mints the mock collateral, approves the
        engine and deposits for each trader (``deposit(amount, account)``); then each trader, an
        impersonated address given ``trader_eth`` for gas, sends its trades. With
        ``manual_mining`` the caller has turned automatic mining off and blocks are mined here
        as fast as they fill; otherwise the node's own mining is awaited.
        """
        engine = record["contracts"]["engine"]
        token = record["contracts"]["collateral"]
        total = sum(s.collateral for s in specs)
        self.impersonate_all(True)
        self.set_balances([s.address for s in specs], trader_eth)
        setup = self.send_many(
            [
                {"from": funder, "to": token, "data": selector_call("mint(address,uint256)", ["address", "uint256"], [funder, total]), "gas": 200_000},
                {"from": funder, "to": token, "data": selector_call("approve(address,uint256)", ["address", "uint256"], [engine, MAX_UINT256]), "gas": 200_000},
            ]
        )
        self.mine_until_done(setup, manual=manual_mining)
        deposits = self.send_many(
            [
                {
                    "from": funder,
                    "to": engine,
                    "data": selector_call("deposit(uint256,address)", ["uint256", "address"], [s.collateral, s.address]),
                    "gas": 150_000,
                }
                for s in specs
            ]
        )
        self.mine_until_done(deposits, manual=manual_mining)
        trades = []
        for s in specs:
            for market_id, size in s.trades:
                limit = MAX_UINT256 if size > 0 else 0
                trades.append(
                    {
                        "from": s.address,
                        "to": engine,
                        "data": selector_call("trade(uint256,int256,uint256)", ["uint256", "int256", "uint256"], [market_id, size, limit]),
                        "gas": 500_000,
                    }
                )
        hashes = self.send_many(trades)
        self.mine_until_done(hashes, manual=manual_mining)

    def seed_pool(self, record: dict[str, Any], lp: str, amount: int, *, manual_mining: bool = True) -> None:
        """Mint ``amount`` token units to ``lp`` and deposit them into the pool."""
        token = record["contracts"]["collateral"]
        pool = record["contracts"]["pool"]
        hashes = self.send_many(
            [
                {"from": lp, "to": token, "data": selector_call("mint(address,uint256)", ["address", "uint256"], [lp, amount]), "gas": 200_000},
                {"from": lp, "to": token, "data": selector_call("approve(address,uint256)", ["address", "uint256"], [pool, MAX_UINT256]), "gas": 200_000},
            ]
        )
        self.mine_until_done(hashes, manual=manual_mining)
        hashes = self.send_many(
            [{"from": lp, "to": pool, "data": selector_call("deposit(uint256,address)", ["uint256", "address"], [amount, lp]), "gas": 400_000}]
        )
        self.mine_until_done(hashes, manual=manual_mining)

    def set_feed_answer(self, feed: str, answer: int, sender: str) -> str:
        """Send ``set_answer(answer)`` to a mock aggregator; returns the hash (not awaited)."""
        return self.send_many(
            [{"from": sender, "to": feed, "data": selector_call("set_answer(int256)", ["int256"], [answer]), "gas": 200_000}]
        )[0]


def _pending(hashes: Sequence[str], found: dict[str, Any]) -> list[str]:
    return [h for h in hashes if h not in found]


def generated_addresses(n: int, seed: int = 1) -> list[str]:
    """``n`` distinct deterministic addresses (no keys: use them impersonated)."""
    return [to_checksum_address(keccak(text=f"ballast-trader-{seed}-{i}")[-20:]) for i in range(n)]


__all__ += ["generated_addresses"]
