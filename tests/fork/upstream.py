"""The fork suite's upstream chain: a real RPC (BALLAST_FORK_URL), or a local anvil seeded with
stand-ins at the real addresses of the tokens and feeds Ballast uses.

The stand-ins are the project's own mocks. Each one is deployed normally on the local upstream, its
runtime code is read back (eth_getCode) and placed at the real address (anvil_setCode), and the
storage its constructor wrote is copied or seeded there, since code placed that way never runs a
constructor:

- USDC: a delegatecall proxy (EIP-1167) in front of MockFiatToken, as real USDC is a proxy in front
  of FiatToken; initialised through the proxy with a blacklister that no test account controls.
- USDT: MockUSDT (transfer, transferFrom and approve return nothing).
- Chainlink feeds: MockAggregator (8 decimals, an immutable, so part of the code), its description
  copied slot by slot (layout from `vyper -f layout`), then a short history of rounds written with
  its own `set_round`, the newest 20 minutes old.

Nothing in the tests may rely on these being stand-ins: they read, deal and take over the real
contracts the same way on a real fork.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import requests
from eth_abi import decode, encode
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address

ROOT = Path(__file__).resolve().parents[2]

# The real addresses (checksummed).
MAINNET_USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
MAINNET_USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
MAINNET_ETH_USD = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"
MAINNET_BTC_USD = "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c"
SEPOLIA_USDC = "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
SEPOLIA_ETH_USD = "0x694AA1769357215DE4FAC081bf1f309aDC325306"
SEPOLIA_BTC_USD = "0x1b44F3514812d835EB1BDB0acB33d3fA3351Ee43"

# The stand-in USDC's blacklister: an address with no known key, so a test can only act as it by
# impersonating the address that `blacklister()` returns, exactly as on a real fork.
STANDIN_BLACKLISTER = to_checksum_address(keccak(b"ballast fork stand-in: USDC blacklister")[-20:])


@dataclass(frozen=True)
class FeedSpec:
    address: str
    description: str
    answer: Decimal  # the newest answer, in USD
    decimals: int = 8


@dataclass(frozen=True)
class ChainSpec:
    """A chain the fork suite can run against, with the real addresses it uses."""

    name: str  # Ape's network name of the upstream ("mainnet", "sepolia")
    chain_id: int
    usdc: str
    usdt: str | None
    feeds: tuple[FeedSpec, ...]
    url_env: str  # the environment variable holding a real RPC URL

    @property
    def fork_network(self) -> str:
        return f"ethereum:{self.name}-fork"


MAINNET = ChainSpec(
    name="mainnet",
    chain_id=1,
    usdc=MAINNET_USDC,
    usdt=MAINNET_USDT,
    feeds=(
        FeedSpec(MAINNET_ETH_USD, "ETH / USD", Decimal("3187.42150000")),
        FeedSpec(MAINNET_BTC_USD, "BTC / USD", Decimal("96412.87000000")),
    ),
    url_env="BALLAST_FORK_URL",
)

SEPOLIA = ChainSpec(
    name="sepolia",
    chain_id=11155111,
    usdc=SEPOLIA_USDC,
    usdt=None,
    feeds=(
        FeedSpec(SEPOLIA_ETH_USD, "ETH / USD", Decimal("3179.05000000")),
        FeedSpec(SEPOLIA_BTC_USD, "BTC / USD", Decimal("96377.10000000")),
    ),
    url_env="BALLAST_SEPOLIA_FORK_URL",
)

CHAINS = {spec.fork_network: spec for spec in (MAINNET, SEPOLIA)}

# Seeded history of each stand-in feed: (seconds before the upstream's head, answer factor).
FEED_HISTORY = ((3 * 3600 + 1200, Decimal("0.991")), (2 * 3600 + 1200, Decimal("1.004")), (3600 + 1200, Decimal("0.997")), (1200, Decimal(1)))


def eip1167_proxy(implementation: str) -> str:
    """Runtime code of an EIP-1167 minimal proxy: every call is delegated to `implementation`."""
    return "0x363d3d373d3d3d363d73" + implementation[2:].lower() + "5af43d82803e903d91602b57fd5bf3"


class RPC:
    """A bare JSON-RPC client (the upstream is set up before Ape connects to anything)."""

    def __init__(self, url: str, timeout: float = 30):
        self.url = url
        self.timeout = timeout
        self._id = 0
        self._session = requests.Session()

    def __call__(self, method: str, *params: Any) -> Any:
        self._id += 1
        body = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": list(params)}
        reply = self._session.post(self.url, json=body, timeout=self.timeout).json()
        if "error" in reply:
            raise RuntimeError(f"{method}{list(params)!r}: {reply['error']}")
        return reply["result"]

    def call(self, to: str, signature: str, arg_types: list[str], args: list, out_types: list[str]) -> tuple:
        data = "0x" + (function_signature_to_4byte_selector(signature) + encode(arg_types, args)).hex()
        raw = self("eth_call", {"to": to, "data": data}, "latest")
        return decode(out_types, bytes.fromhex(raw[2:]))

    def send(self, sender: str, to: str | None, data: bytes) -> dict:
        tx = {"from": sender, "data": "0x" + data.hex(), "gas": hex(8_000_000)}
        if to is not None:
            tx["to"] = to
        tx_hash = self("eth_sendTransaction", tx)
        for _ in range(200):
            receipt = self("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                if int(receipt["status"], 16) != 1:
                    raise RuntimeError(f"upstream seeding transaction failed: {receipt}")
                return receipt
            time.sleep(0.05)
        raise RuntimeError(f"upstream seeding transaction {tx_hash} was not mined")

    def transact(self, sender: str, to: str, signature: str, arg_types: list[str], args: list) -> dict:
        return self.send(sender, to, function_signature_to_4byte_selector(signature) + encode(arg_types, args))

    def head_timestamp(self) -> int:
        return int(self("eth_getBlockByNumber", "latest", False)["timestamp"], 16)


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, get SIGTERM when the test process dies, however it
    dies, so that no upstream anvil outlives a killed test run."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def storage_layout(source: Path) -> dict[str, dict]:
    """A Vyper contract's storage layout (variable -> {slot, n_slots, type}), from the compiler."""
    vyper = shutil.which("vyper") or str(Path(sys.executable).with_name("vyper"))
    out = subprocess.run([vyper, "-f", "layout", str(source)], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)["storage_layout"]


@dataclass
class Artifacts:
    """What seeding needs from the compiled project: deployment bytecode of the mocks."""

    bytecode: Callable[[str], bytes]  # contract name -> deployment bytecode

    @classmethod
    def from_ape_project(cls) -> "Artifacts":
        from ape import project

        def bytecode(name: str) -> bytes:
            code = getattr(project, name).contract_type.deployment_bytecode.bytecode
            return bytes.fromhex(code[2:] if code.startswith("0x") else code)

        return cls(bytecode=bytecode)


class LocalUpstream:
    """A local anvil with the chain id of `spec`, seeded with stand-ins at the real addresses."""

    def __init__(self, spec: ChainSpec, artifacts: Artifacts, anvil: str | None = None):
        self.spec = spec
        self.artifacts = artifacts
        self.anvil = anvil or shutil.which("anvil") or "anvil"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rpc = RPC(self.url)
        self.process: subprocess.Popen | None = None
        self.log_path = Path(tempfile.gettempdir()) / f"ballast-upstream-{spec.name}-{self.port}.log"

    # PROCESS #

    def start(self) -> "LocalUpstream":
        with open(self.log_path, "w") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [self.anvil, "--port", str(self.port), "--chain-id", str(self.spec.chain_id), "--accounts", "2"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"upstream anvil exited with {self.process.returncode}; see {self.log_path}")
            try:
                if int(self.rpc("eth_chainId"), 16) == self.spec.chain_id:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop(keep_log=True)
                raise RuntimeError(f"upstream anvil did not answer on {self.url}; see {self.log_path}")
            time.sleep(0.1)
        try:
            self.seed()
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def stop(self, keep_log: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if not keep_log:
            self.log_path.unlink(missing_ok=True)

    # SEEDING #

    def seed(self) -> None:
        self.sender = to_checksum_address(self.rpc("eth_accounts")[0])
        self._seed_usdc(self.spec.usdc)
        if self.spec.usdt:
            self._seed_plain(self.spec.usdt, "MockUSDT")
        layout = storage_layout(ROOT / "contracts" / "testing" / "MockAggregator.vy")
        for feed in self.spec.feeds:
            self._seed_feed(feed, layout)
        self.rpc("evm_mine")
        self.check()

    def _deploy(self, name: str, arg_types: list[str] = (), args: list = ()) -> str:
        data = self.artifacts.bytecode(name) + (encode(list(arg_types), list(args)) if arg_types else b"")
        receipt = self.rpc.send(self.sender, None, data)
        return to_checksum_address(receipt["contractAddress"])

    def _place(self, target: str, code: str) -> None:
        if len(code) <= 2:
            raise RuntimeError(f"no runtime code to place at {target}")
        self.rpc("anvil_setCode", target, code)

    def _seed_usdc(self, target: str) -> None:
        implementation = self._deploy("MockFiatToken")
        self._place(target, eip1167_proxy(implementation))
        self.rpc.transact(self.sender, target, "initialize(address)", ["address"], [STANDIN_BLACKLISTER])

    def _seed_plain(self, target: str, name: str) -> None:
        """A mock without constructor storage: its runtime code is all it needs."""
        deployed = self._deploy(name)
        self._place(target, self.rpc("eth_getCode", deployed, "latest"))

    def _seed_feed(self, feed: FeedSpec, layout: dict[str, dict]) -> None:
        answer = int(feed.answer * 10**feed.decimals)
        deployed = self._deploy("MockAggregator", ["uint8", "int256", "string"], [feed.decimals, answer, feed.description])
        self._place(feed.address, self.rpc("eth_getCode", deployed, "latest"))
        # copy what the constructor stored (every fixed-size variable; round entries are rewritten below)
        for var in layout.values():
            if var["type"].startswith("HashMap"):
                continue
            for slot in range(var["slot"], var["slot"] + var["n_slots"]):
                key = hex(slot)
                self.rpc("anvil_setStorageAt", feed.address, "0x" + f"{slot:064x}", self.rpc("eth_getStorageAt", deployed, key, "latest"))
        # restart the round count at the target, then write a realistic history through set_round
        self.rpc("anvil_setStorageAt", feed.address, "0x" + f"{layout['latest_round']['slot']:064x}", "0x" + "00" * 32)
        head = self.rpc.head_timestamp()
        for age, factor in FEED_HISTORY:
            value = int(feed.answer * factor * 10**feed.decimals)
            self.rpc.transact(self.sender, feed.address, "set_round(int256,uint256)", ["int256", "uint256"], [value, head - age])

    def check(self) -> None:
        """Reads every stand-in back through the real interfaces; raises if one is wrong."""
        r = self.rpc
        problems = []
        tokens = [(self.spec.usdc, "USDC")] + ([(self.spec.usdt, "USDT")] if self.spec.usdt else [])
        for address, symbol in tokens:
            (decimals,) = r.call(address, "decimals()", [], [], ["uint8"])
            (sym,) = r.call(address, "symbol()", [], [], ["string"])
            if (decimals, sym) != (6, symbol):
                problems.append(f"{symbol} stand-in reads decimals={decimals} symbol={sym}")
        (blacklister,) = r.call(self.spec.usdc, "blacklister()", [], [], ["address"])
        if to_checksum_address(blacklister) != STANDIN_BLACKLISTER:
            problems.append(f"USDC stand-in blacklister is {blacklister}")
        head = r.head_timestamp()
        for feed in self.spec.feeds:
            (decimals,) = r.call(feed.address, "decimals()", [], [], ["uint8"])
            (description,) = r.call(feed.address, "description()", [], [], ["string"])
            (version,) = r.call(feed.address, "version()", [], [], ["uint256"])
            round_id, answer, _, updated_at, _ = r.call(feed.address, "latestRoundData()", [], [], ["uint80", "int256", "uint256", "uint256", "uint80"])
            first = r.call(feed.address, "getRoundData(uint80)", ["uint80"], [1], ["uint80", "int256", "uint256", "uint256", "uint80"])
            if decimals != feed.decimals or description != feed.description or version != 4:
                problems.append(f"{feed.description} stand-in reads decimals={decimals} description={description!r} version={version}")
            if answer != int(feed.answer * 10**feed.decimals) or round_id != len(FEED_HISTORY) or not 0 < head - updated_at <= 3600:
                problems.append(f"{feed.description} stand-in latest round {round_id} answer {answer} updated {head - updated_at}s ago")
            if first[0] != 1 or first[1] <= 0:
                problems.append(f"{feed.description} stand-in round 1 is {first}")
        if problems:
            raise RuntimeError("upstream stand-ins are wrong: " + "; ".join(problems))


def upstream_url(spec: ChainSpec, artifacts_factory: Callable[[], Artifacts]) -> tuple[str, LocalUpstream | None]:
    """The real RPC in `spec.url_env` when set, else a freshly started and seeded local upstream."""
    if url := os.environ.get(spec.url_env, "").strip():
        return url, None
    local = LocalUpstream(spec, artifacts_factory()).start()
    return local.url, local
