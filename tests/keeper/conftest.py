"""Fixtures for the keeper tests.

The first part serves the pure unit tests (no chain). The second part, used only by the
integration tests that ask for it, deploys Ballast on the session's anvil (Ape's own foundry
provider, through ``scripts/_deploy.py``'s ``deploy``) and opens many traders' positions through
the engine with :mod:`keeper.localchain` (batched JSON-RPC from impersonated accounts). Ape's
isolation reverts the chain after each test, so each test starts from the same opened market.
"""

from __future__ import annotations

import json
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from eth_utils import to_checksum_address

from keeper.abi import EVENTS
from keeper.engine import EngineClient
from keeper.localchain import DevChain, TraderSpec, generated_addresses
from keeper.rpc import Rpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import base_config, make_env  # noqa: E402  (tests/helpers.py)


@pytest.fixture(autouse=True)
def clean_ballast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without BALLAST_* variables from the outer environment."""
    for name in list(os.environ):
        if name.upper().startswith("BALLAST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_addresses() -> Callable[[int, int], list[str]]:
    """``make_addresses(n, seed)``: n distinct checksummed addresses, reproducible by seed."""

    def make(n: int, seed: int = 0) -> list[str]:
        rng = random.Random(seed)
        found: dict[str, None] = {}
        while len(found) < n:
            found[to_checksum_address(rng.getrandbits(160).to_bytes(20, "big"))] = None
        return list(found)

    return make


ENGINE = "0x" + "11" * 20
POOL = "0x" + "22" * 20
COLLATERAL = "0x" + "33" * 20
ORACLE = "0x" + "44" * 20


@pytest.fixture
def deployment_file(tmp_path: Path) -> Callable[..., Path]:
    """``deployment_file(**overrides)``: write a valid deployment JSON (with overrides)."""

    def write(**overrides: object) -> Path:
        data: dict[str, object] = {
            "network": "ethereum:local:foundry",
            "chain_id": 31337,
            "deploy_block": 7,
            "contracts": {
                "engine": ENGINE,
                "pool": POOL,
                "collateral": COLLATERAL,
                "oracles": {"ETH-USD": ORACLE},
            },
        }
        data.update(overrides)
        path = tmp_path / "deployment.json"
        path.write_text(json.dumps(data))
        return path

    return write


# -- integration: a deployed market with many traders -------------------------------------------




WAD = 10**18
USDC = 10**6
ETH_PRICE, BTC_PRICE = 2000, 60000
FEED_DECIMALS = 8


def trader_specs(n: int, seed: int = 0) -> list[TraderSpec]:
    """``n`` traders of four kinds, in turn: high-leverage ETH longs (7.3x to 8.3x, liquidatable
    after a 10% fall), low-leverage ETH longs (2x to 4x), ETH shorts (2x to 5x), and cross accounts
    long ETH (6x to 7x of their collateral) and short BTC (1x)."""
    rng = random.Random(seed)
    out = []
    for i, a in enumerate(generated_addresses(n, seed=seed + 100)):
        collateral = rng.randrange(800, 1500)
        kind = i % 4
        if kind == 0:
            trades = ((0, _size(collateral * rng.uniform(7.3, 8.3), ETH_PRICE)),)
        elif kind == 1:
            trades = ((0, _size(collateral * rng.uniform(2, 4), ETH_PRICE)),)
        elif kind == 2:
            trades = ((0, -_size(collateral * rng.uniform(2, 5), ETH_PRICE)),)
        else:
            trades = (
                (0, _size(collateral * rng.uniform(6, 7), ETH_PRICE)),
                (1, -_size(collateral * 1.0, BTC_PRICE)),
            )
        out.append(TraderSpec(a, collateral * USDC, trades))
    return out


def _size(notional_usd: float, price: int) -> int:
    return int(Decimal(str(round(notional_usd / price, 6))) * WAD)


@dataclass
class Market:
    """A deployed Ballast with traders, seen through raw JSON-RPC."""

    url: str
    record: dict[str, Any]
    deployment_file: Path
    deployer: str
    traders: list[str]
    chain: DevChain
    engine: EngineClient
    specs: list[TraderSpec] = field(default_factory=list)
    manual: bool = False

    def set_price(self, market_id: int, usd: float | int) -> int:
        """Move a mock feed (mined now; with manual mining, in a block mined here)."""
        answer = int(Decimal(str(usd)) * 10**FEED_DECIMALS)
        h = self.chain.set_feed_answer(self.record["markets"][market_id]["feed"], answer, self.deployer)
        [receipt] = self.chain.mine_until_done([h], manual=self.manual)
        # the block of the price update itself: a running keeper may already have mined more
        block = receipt["blockNumber"]
        return int(block, 16) if isinstance(block, str) else int(block)

    def open(self, specs: list[TraderSpec]) -> None:
        self.chain.open_traders(self.record, specs, funder=self.deployer, manual_mining=self.manual)
        self.specs += specs
        self.traders += [s.address for s in specs]

    def liquidatable(self, accounts: list[str] | None = None, block: int | str = "latest") -> set[str]:
        """Accounts liquidatable at the end of `block`; for a numbered block also those a running
        keeper already liquidated inside it (the node may mine the keeper's transaction in the
        same block as the price update it reacted to, after it)."""
        healths, errors = self.engine.healths(accounts or self.traders, block)
        assert not errors, errors
        found = {a for a, h in healths.items() if h.liquidatable}
        if isinstance(block, int):
            found |= {a for a, _ in self.liquidations(block, block) if accounts is None or a in accounts}
        return found

    def liquidations(self, from_block: int, to_block: int | None = None) -> list[tuple[str, str]]:
        """``(account, liquidator)`` of every Liquidation event from ``from_block`` (to ``to_block``)."""
        ev = EVENTS["Liquidation"]
        to = "latest" if to_block is None else hex(to_block)
        logs = self.engine.rpc.request(
            "eth_getLogs",
            [{"address": self.engine.address, "fromBlock": hex(from_block), "toBlock": to, "topics": [ev.topic]}],
        )
        out = []
        for lg in logs:
            d = ev.decode(lg)
            out.append((d["account"], d["liquidator"]))
        return out

    def block(self) -> int:
        return self.chain.block_number()

    def mine(self, blocks: int = 1) -> None:
        self.chain.mine(blocks)


@pytest.fixture(scope="module")
def market(project, chain, deployer, lp, tmp_path_factory) -> Market:
    """Ballast deployed by ``deploy()`` with a $1M pool and 40 traders of four kinds."""
    env = make_env(project, chain, deployer, lp, base_config(), pool_usd=1_000_000)
    url = chain.provider.uri
    record = env.record
    path = tmp_path_factory.mktemp("deployment") / "local.json"
    path.write_text(json.dumps(record))
    rpc = Rpc([url], timeout=60.0, retries=1)
    m = Market(
        url=url,
        record=record,
        deployment_file=path,
        deployer=deployer.address,
        traders=[],
        chain=DevChain(rpc),
        engine=EngineClient(rpc, record["contracts"]["engine"], healths_batch=1000),
    )
    m.open(trader_specs(40))
    return m


@pytest.fixture
def fresh(market: Market):
    """The market, with a fresh nonce cache (Ape's isolation rewinds the chain between tests)."""
    market.chain.forget_nonces()
    market.manual = False
    traders, specs = list(market.traders), list(market.specs)
    yield market
    market.traders, market.specs = traders, specs  # the chain is rewound: so is the list
    market.chain.forget_nonces()


@pytest.fixture
def manual_mining(fresh: Market):
    """Automatic mining off for the test: blocks are mined when the test says so."""
    fresh.chain.automine(False)
    fresh.manual = True
    try:
        yield fresh
    finally:
        fresh.manual = False
        if fresh.chain.hold_base_fee is not None:
            # the node keeps its next base fee across Ape's snapshot revert: put it back
            fresh.chain.rpc.request("anvil_setNextBlockBaseFeePerGas", ["0x0"])
        fresh.chain.hold_base_fee = None
        fresh.chain.automine(True)
        fresh.chain.forget_nonces()


@pytest.fixture(scope="session")
def dev_keys(accounts) -> list[str]:
    """Private keys of Ape's test accounts (anvil's dev accounts)."""
    return [str(accounts[i].private_key) for i in range(12)]


# -- keepers ------------------------------------------------------------------------------------

ETH, BTC = 0, 1


def keeper_cli() -> list[str]:
    """The ``ballast-keeper`` console script of this environment."""
    script = Path(sys.executable).parent / "ballast-keeper"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from keeper.cli import main; main()"]


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a keeper's stderr."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, every: float = 0.05) -> None:
    """Wait until ``predicate()`` holds; fail the test after ``timeout`` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


@pytest.fixture
def make_keeper(fresh: Market, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dev_keys: list[str]):
    """``make_keeper(key_index=3, state="keeper.sqlite", **flags)``: a connected in-process
    keeper signing with Ape test account ``key_index`` (``None``: no signer)."""
    from keeper.runner import Keeper
    from keeper.settings import load_deployment, load_settings

    made = []

    def make(key_index: int | None = 3, *, state: str = "keeper.sqlite", connect: bool = True, **flags: Any):
        if key_index is None:
            monkeypatch.delenv("BALLAST_PRIVATE_KEY", raising=False)
        else:
            monkeypatch.setenv("BALLAST_PRIVATE_KEY", dev_keys[key_index])
        values = {
            "rpc_url": fresh.url,
            "deployment": str(fresh.deployment_file),
            "state_db": str(tmp_path / state),
            "metrics_port": 0,
            "poll_interval": 0.05,
            "rpc_retries": 1,
            **flags,
        }
        settings = load_settings({k: str(v) if not isinstance(v, bool) else v for k, v in values.items()})
        keeper = Keeper(settings, load_deployment(fresh.deployment_file))
        made.append(keeper)
        if connect:
            keeper.connect(need_signer=key_index is not None and not settings.dry_run)
        return keeper

    yield make
    for k in made:
        k.close()
