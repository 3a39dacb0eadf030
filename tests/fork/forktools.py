"""Fork-test tools that work the same on a real fork and on the local upstream's stand-ins.

- `deal`: sets a token balance by finding the balance mapping's storage slot (probing Solidity and
  Vyper layouts, verified through `balanceOf`), also behind a delegatecall proxy such as USDC's.
- `FeedControl`: reads a Chainlink feed as it is, then takes it over with ControlledAggregator's
  code, continuing its decimals, description and round ids, to move the price.
- `blacklist`: USDC's blacklister role, read from the token and impersonated.
- `ForkEnv`: tests/helpers.py's Env on real tokens and feeds (deal instead of mint).
The real contracts are used through their own interfaces (minimal ABIs below), never a stand-in's ABI.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi import encode
from eth_utils import keccak, to_checksum_address

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from helpers import WAD, Env  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FRESH_MARGIN = 900  # seconds of validity a test may use up before a feed reads stale

# MINIMAL ABIS OF THE REAL CONTRACTS #


def _fn(name, inputs=(), outputs=(), mutability="view"):
    return {
        "type": "function",
        "name": name,
        "stateMutability": mutability,
        "inputs": [{"name": f"a{i}", "type": t} for i, t in enumerate(inputs)],
        "outputs": [{"name": f"r{i}", "type": t} for i, t in enumerate(outputs)],
    }


ERC20_ABI = [
    _fn("name", (), ("string",)),
    _fn("symbol", (), ("string",)),
    _fn("decimals", (), ("uint8",)),
    _fn("totalSupply", (), ("uint256",)),
    _fn("balanceOf", ("address",), ("uint256",)),
    _fn("allowance", ("address", "address"), ("uint256",)),
    _fn("transfer", ("address", "uint256"), ("bool",), "nonpayable"),
    _fn("transferFrom", ("address", "address", "uint256"), ("bool",), "nonpayable"),
    _fn("approve", ("address", "uint256"), ("bool",), "nonpayable"),
]

# USDT: transfer, transferFrom and approve return nothing.
USDT_ABI = [f for f in ERC20_ABI if f["name"] not in ("transfer", "transferFrom", "approve")] + [
    _fn("transfer", ("address", "uint256"), (), "nonpayable"),
    _fn("transferFrom", ("address", "address", "uint256"), (), "nonpayable"),
    _fn("approve", ("address", "uint256"), (), "nonpayable"),
]

# USDC (FiatToken): the blacklist role.
FIAT_TOKEN_ABI = ERC20_ABI + [
    _fn("blacklister", (), ("address",)),
    _fn("isBlacklisted", ("address",), ("bool",)),
    _fn("blacklist", ("address",), (), "nonpayable"),
    _fn("unBlacklist", ("address",), (), "nonpayable"),
]

_ROUND = ("uint80", "int256", "uint256", "uint256", "uint80")
AGGREGATOR_ABI = [
    _fn("decimals", (), ("uint8",)),
    _fn("description", (), ("string",)),
    _fn("version", (), ("uint256",)),
    _fn("latestRoundData", (), _ROUND),
    _fn("getRoundData", ("uint80",), _ROUND),
]


def contract(address: str, abi: list[dict]) -> Any:
    from ape import Contract

    return Contract(address, abi=abi)


# DEAL #

_SLOTS: dict[tuple[int, str], tuple[str, int]] = {}  # (chain id, token) -> (layout, slot)
MAX_PROBED_SLOT = 64
_WORD = 2**256


def mapping_slot(layout: str, slot: int, key: str) -> int:
    """Storage slot of `mapping[key]` for a mapping at `slot`: Solidity hashes key . slot,
    Vyper (0.4 HashMap) slot . key."""
    k, s = encode(["address"], [key]), slot.to_bytes(32, "big")
    return int.from_bytes(keccak(k + s if layout == "solidity" else s + k), "big")


def _provider():
    from ape import chain

    return chain.provider


def _get(token: str, slot: int) -> int:
    return int(_provider().make_request("eth_getStorageAt", [token, hex(slot), "latest"]), 16)


def _set(token: str, slot: int, value: int) -> None:
    _provider().make_request("anvil_setStorageAt", [token, "0x" + f"{slot:064x}", "0x" + f"{value % _WORD:064x}"])


def find_balance_slot(token: str, probe: str) -> tuple[str, int]:
    """(layout, slot) of `token`'s balance mapping, found by writing a marker at each candidate
    storage location of `probe`'s balance and reading it back through `balanceOf`."""
    from ape import chain

    token = to_checksum_address(token)
    cache_key = (chain.chain_id, token)
    if cache_key in _SLOTS:
        return _SLOTS[cache_key]
    erc20 = contract(token, ERC20_ABI)
    for slot in range(MAX_PROBED_SLOT):
        for layout in ("solidity", "vyper"):
            where = mapping_slot(layout, slot, probe)
            before = _get(token, where)
            # a marker below 2**255: USDC keeps its blacklist flag in the top bit of the same word
            marker = 0x5EED_0000_0000_0000_0000_0000_0000_0000 + slot * 2 + (layout == "vyper")
            if marker == before:
                marker += 1
            _set(token, where, marker)
            try:
                seen = erc20.balanceOf(probe)
            except Exception:
                seen = None
            _set(token, where, before)
            if seen == marker:
                _SLOTS[cache_key] = (layout, slot)
                return layout, slot
    raise LookupError(f"no balance mapping found for {token} in slots 0..{MAX_PROBED_SLOT - 1}")


def deal(token: str, account: Any, amount: int) -> None:
    """Sets `account`'s balance of `token` to `amount` (token units); checks it through balanceOf.
    The total supply is left as it is. (USDC keeps an account's blacklist flag in the top bit of the
    balance word: deal before blacklisting.)"""
    token, address = getattr(token, "address", token), getattr(account, "address", account)
    layout, slot = find_balance_slot(token, address)
    _set(token, mapping_slot(layout, slot, address), amount)
    assert contract(token, ERC20_ABI).balanceOf(address) == amount


# ACCOUNTS AND TIME #


def impersonate(address: str, eth: int = 10**20) -> Any:
    """An Ape account that sends as `address` on the fork, with ETH for gas."""
    from ape import accounts

    signer = accounts.test_accounts.impersonate_account(to_checksum_address(address))
    _provider().set_balance(signer.address, eth)
    return signer


def blacklist(usdc: str, account: Any) -> None:
    """Blacklists `account` on USDC as Circle would: as the `blacklister()` the token names."""
    token = contract(usdc, FIAT_TOKEN_ABI)
    token.blacklist(getattr(account, "address", account), sender=impersonate(token.blacklister()))


def unblacklist(usdc: str, account: Any) -> None:
    """Lifts a USDC blacklist on `account`, as the token's `blacklister()`."""
    token = contract(usdc, FIAT_TOKEN_ABI)
    token.unBlacklist(getattr(account, "address", account), sender=impersonate(token.blacklister()))


def head_timestamp() -> int:
    from ape import chain

    return chain.blocks.head.timestamp


def mine_at(timestamp: int) -> None:
    """Mines one block with exactly this timestamp (views then run at it)."""
    _provider().make_request("evm_mine", [timestamp])
    assert head_timestamp() == timestamp


# FEEDS #


@dataclass
class RoundData:
    round_id: int
    answer: int
    started_at: int
    updated_at: int

    @classmethod
    def of(cls, raw) -> "RoundData":
        return cls(int(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]))


_CONTROLLED_CODE: dict[str, str] = {}  # "code" -> ControlledAggregator's runtime code


def controlled_aggregator_code(sender: Any) -> str:
    """ControlledAggregator's runtime code, as deployed (read back once from a template)."""
    if "code" not in _CONTROLLED_CODE:
        from ape import project

        template = sender.deploy(project.ControlledAggregator)
        _CONTROLLED_CODE["code"] = "0x" + bytes(_provider().get_code(template.address)).hex()
    return _CONTROLLED_CODE["code"]


@dataclass
class FeedControl:
    """One Chainlink feed: what it read when this was made (`read`), and a way to move its answer.

    Moving it places ControlledAggregator's code at the feed (once per chain state: Ape's isolation
    reverts it after each test) and continues the feed's latest round with its decimals and
    description, read from the feed at that moment."""

    address: str
    decimals: int
    description: str
    latest: RoundData

    @classmethod
    def read(cls, address: str) -> "FeedControl":
        feed = contract(address, AGGREGATOR_ABI)
        return cls(
            address=to_checksum_address(address),
            decimals=int(feed.decimals()),
            description=str(feed.description()),
            latest=RoundData.of(feed.latestRoundData()),
        )

    @property
    def feed(self) -> Any:
        return contract(self.address, AGGREGATOR_ABI)

    def wad(self, answer: int | None = None) -> int:
        """An answer of this feed (default: the latest read) as the WAD price the adapter returns."""
        a = self.latest.answer if answer is None else answer
        return a * 10 ** (18 - self.decimals) if self.decimals <= 18 else a // 10 ** (self.decimals - 18)

    def answer_of(self, usd: Decimal | int | str) -> int:
        return int(Decimal(str(usd)) * 10**self.decimals)

    def is_taken_over(self, sender: Any) -> bool:
        return "0x" + bytes(_provider().get_code(self.address)).hex() == controlled_aggregator_code(sender)

    def take_over(self, sender: Any) -> Any:
        """Places ControlledAggregator's runtime code at the feed and continues the feed's current
        latest round with the feed's decimals and description. Returns the controllable contract."""
        from ape import project

        now = FeedControl.read(self.address)  # the feed as it is now, not as it was read earlier
        code = controlled_aggregator_code(sender)
        _provider().make_request("anvil_setCode", [self.address, code])
        controlled = project.ControlledAggregator.at(self.address)
        r = now.latest
        controlled.take_over(now.decimals, now.description, r.round_id, r.answer, r.started_at, r.updated_at, sender=sender)
        after = FeedControl.read(self.address)
        assert (after.decimals, after.description, after.latest) == (now.decimals, now.description, now.latest)
        self.decimals, self.description, self.latest = now.decimals, now.description, now.latest
        return controlled

    def set_answer(self, answer: int, sender: Any) -> RoundData:
        """A new round with `answer` (the feed's own decimals), updated now; takes the feed over
        first unless it already runs ControlledAggregator's code."""
        from ape import project

        if not self.is_taken_over(sender):
            self.take_over(sender)
        project.ControlledAggregator.at(self.address).set_answer(answer, sender=sender)
        self.latest = RoundData.of(self.feed.latestRoundData())
        assert self.latest.answer == answer
        return self.latest

    def set_usd(self, usd: Decimal | int | str, sender: Any) -> int:
        """Moves the feed to `usd`; returns the WAD price the adapter will report."""
        return self.wad(self.set_answer(self.answer_of(usd), sender).answer)


# DEPLOYED PROTOCOL #


@dataclass
class ForkEnv(Env):
    """A deployment on real tokens and feeds: balances are dealt, prices moved through FeedControl."""

    controls: list[FeedControl] = field(default_factory=list)

    def mint(self, who, usd) -> int:
        amount = self.units(usd)
        deal(self.token.address, who, self.token.balanceOf(who.address) + amount)
        return amount

    def keep_fresh(self, margin: int = FRESH_MARGIN) -> None:
        """A real feed is up to a heartbeat old at the fork block. A feed with less than `margin`
        seconds of validity left is taken over and its own latest answer published again now,
        so that a module's tests do not see it go stale half-way (the price stays the feed's)."""
        now = head_timestamp()
        for m, control in zip(self.record["markets"], self.controls):
            if now - control.latest.updated_at > m["heartbeat"] - margin:
                control.set_answer(control.latest.answer, self.deployer)

    def set_price(self, market_id: int, usd) -> int:
        """Moves a market's feed (taken over, its decimals kept); returns the WAD price."""
        return self.controls[market_id].set_usd(usd, self.deployer)


def usd(wad_value: int) -> Decimal:
    return Decimal(wad_value) / WAD


def load_network_config(network: str):
    """config/<network>.yaml, checked by the deploy script's own loader."""
    from _deploy import load_config

    return load_config(ROOT / "config" / f"{network}.yaml")


def make_fork_env(project, chain, deployer, lp, cfg, token_abi, pool_usd=1_000_000) -> ForkEnv:
    """Deploys `cfg` through scripts/_deploy.py's deploy() (local=False: real tokens and feeds
    only), reads every feed as it is, and seeds the pool with dealt tokens."""
    from _deploy import deploy

    record = deploy(cfg, deployer, project, chain, local=False)
    env = env_from_record(project, record, deployer, token_abi)
    if pool_usd:
        env.seed_pool(lp, pool_usd)
    return env


def env_from_record(project, record, deployer, token_abi) -> ForkEnv:
    """A ForkEnv over an existing deployment record (deployments/<network>.json); `deployer` is
    only the account that sends the tests' own feed transactions."""
    c = record["contracts"]
    env = ForkEnv(
        engine=project.MarginEngine.at(c["engine"]),
        config=project.RiskConfig.at(c["config"]),
        pool=project.RiskPool.at(c["pool"]),
        token=contract(c["collateral"], token_abi),
        feeds=[contract(m["feed"], AGGREGATOR_ABI) for m in record["markets"]],
        oracles=[project.ChainlinkOracle.at(m["oracle"]) for m in record["markets"]],
        deployer=deployer,
        decimals=record["collateral_decimals"],
        record=record,
        controls=[FeedControl.read(m["feed"]) for m in record["markets"]],
    )
    env.keep_fresh()
    return env
