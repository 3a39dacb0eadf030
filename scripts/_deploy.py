"""Deployment of Ballast from a YAML config: the checks, the deploy itself, the deployment file.

Used by `ape run deploy`, by the demo and by the test fixtures, so that every deployment goes
through the same code and the same parameter checks.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WAD = 10**18
ROOT = Path(__file__).resolve().parent.parent

# The contract's hard bounds (contracts/RiskConfig.vy, CONSTANTS); checked here first so that a bad
# config is refused before anything is deployed.
MIN_MMF, MAX_MMF = Decimal("0.001"), Decimal("0.5")
MAX_IMF = Decimal(1)
MAX_IM_MULTIPLIER = Decimal(10)
MAX_LIQ_PENALTY = Decimal("0.1")
MAX_TAKER_FEE = Decimal("0.01")
MIN_SKEW_SCALE, MAX_SKEW_SCALE = Decimal(1), Decimal(10**18)
MIN_POSITION_NOTIONAL, MAX_POSITION_NOTIONAL = Decimal(1), Decimal(10**6)
MIN_LIQ_TARGET, MAX_LIQ_TARGET = Decimal(1), Decimal(3)
MAX_KEEPER_REWARD = Decimal(10_000)
MAX_POOL_USAGE = Decimal(10)
MAX_FUNDING_RATE = Decimal("0.1")  # per day at full skew
MAX_Z = Decimal(10)
MAX_HORIZON = 7 * 86400
MIN_TAU, MAX_TAU = 60, 30 * 86400
MIN_RISK_DELAY, MAX_RISK_DELAY = 3600, 30 * 86400
MAX_BRACKETS = 8
INF_CAP_USD = Decimal(2**160 - 1) / WAD  # the engine packs finite caps into 160 bits
MAX_FALLBACK_DEVIATION = Decimal("0.5")
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class ConfigError(ValueError):
    """A deployment config that breaks DESIGN's constraints or the contracts' bounds."""


def wad(x: Decimal | int | str) -> int:
    """A decimal quantity as a WAD integer (exact; refuses more than 18 decimals)."""
    d = Decimal(str(x))
    v = d * WAD
    if v != v.to_integral_value():
        raise ConfigError(f"{x} has more than 18 decimals")
    return int(v)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MockToken(_Strict):
    """A mock collateral token, deployed on a local chain."""

    kind: Literal["erc20", "usdc", "usdt"] = "usdc"
    name: str = "USD Coin"
    symbol: str = "USDC"
    decimals: int = 6

    @field_validator("decimals")
    @classmethod
    def _decimals(cls, v: int) -> int:
        if not 0 <= v <= 18:
            raise ValueError("collateral decimals must be 0..18")
        return v


class MockFeed(_Strict):
    """A mock Chainlink aggregator, deployed on a local chain."""

    decimals: int = 8
    answer: Decimal
    description: str = ""


class BracketConfig(_Strict):
    """A maintenance bracket: `mmf` applies to the part of a position's notional below `cap` USD
    (and above the previous cap); the last bracket has no cap."""

    cap: Optional[Decimal] = None  # USD; None for the last bracket
    mmf: Decimal


class MarketConfig(_Strict):
    name: str
    feed: str | MockFeed  # an address, or a mock on a local chain
    heartbeat: int = Field(gt=0)
    sequencer_feed: Optional[str] = None
    grace_period: int = Field(default=0, ge=0)
    # optional second feed, used only while the first is stale or invalid and within max_deviation
    fallback_feed: Optional[str | MockFeed] = None
    fallback_heartbeat: int = Field(default=0, ge=0)
    max_deviation: Decimal = Decimal(0)  # of the first feed's last good answer
    # maintenance brackets, ascending; `mmf` alone is shorthand for one bracket
    mmf: Optional[Decimal] = None
    brackets: Optional[list[BracketConfig]] = None
    imf: Decimal
    im_multiplier: Decimal = Decimal("1.5")
    liq_penalty: Decimal
    taker_fee: Decimal
    skew_scale: Decimal  # base units
    max_oi_long: Decimal
    max_oi_short: Decimal
    min_position_notional: Decimal  # USD
    max_funding_rate: Decimal = Decimal(0)  # per day at full skew
    z: Decimal = Decimal(0)  # volatility multiplier (0: no volatility term)
    horizon: int = 3600  # seconds
    tau: int = 14400  # seconds

    def bracket_list(self) -> list[BracketConfig]:
        if (self.mmf is None) == (self.brackets is None):
            raise ConfigError(f"{self.name}: give either mmf or brackets")
        return self.brackets if self.brackets is not None else [BracketConfig(mmf=self.mmf)]

    @property
    def first_mmf(self) -> Decimal:
        return self.bracket_list()[0].mmf

    def check(self, min_keeper_reward: Decimal) -> None:
        """Raises ConfigError naming the first broken constraint."""
        n = self.name
        table = self.bracket_list()
        if not 1 <= len(table) <= MAX_BRACKETS:
            raise ConfigError(f"{n}: 1 to {MAX_BRACKETS} brackets")
        lower, prev = Decimal(0), Decimal(0)
        for i, b in enumerate(table):
            last = i == len(table) - 1
            if last != (b.cap is None):
                raise ConfigError(f"{n}: every bracket but the last needs a cap, and the last has none")
            if b.cap is not None and not lower < b.cap < INF_CAP_USD:
                raise ConfigError(f"{n}: bracket caps must rise")
            if not MIN_MMF <= b.mmf <= MAX_MMF:
                raise ConfigError(f"{n}: mmf {b.mmf} outside [{MIN_MMF}, {MAX_MMF}]")
            if b.mmf < prev:
                raise ConfigError(f"{n}: bracket mmf must not fall")
            lower, prev = b.cap or lower, b.mmf
        if not 0 <= self.max_funding_rate <= MAX_FUNDING_RATE:
            raise ConfigError(f"{n}: max_funding_rate outside [0, {MAX_FUNDING_RATE}]")
        if not (0 <= self.z <= MAX_Z and 0 <= self.horizon <= MAX_HORIZON and MIN_TAU <= self.tau <= MAX_TAU):
            raise ConfigError(f"{n}: volatility parameters out of bounds (z <= {MAX_Z}, horizon <= {MAX_HORIZON} s, tau in [{MIN_TAU}, {MAX_TAU}] s)")
        if not self.first_mmf <= self.imf <= MAX_IMF:
            raise ConfigError(f"{n}: imf {self.imf} must be within [mmf, {MAX_IMF}]")
        if not 1 <= self.im_multiplier <= MAX_IM_MULTIPLIER:
            raise ConfigError(f"{n}: im_multiplier {self.im_multiplier} outside [1, {MAX_IM_MULTIPLIER}]")
        if not 0 <= self.liq_penalty <= min(self.first_mmf, MAX_LIQ_PENALTY):
            raise ConfigError(f"{n}: liq_penalty {self.liq_penalty} must be within [0, min(mmf, {MAX_LIQ_PENALTY})]")
        if not 0 <= self.taker_fee <= MAX_TAKER_FEE:
            raise ConfigError(f"{n}: taker_fee {self.taker_fee} outside [0, {MAX_TAKER_FEE}]")
        if not MIN_SKEW_SCALE <= self.skew_scale <= MAX_SKEW_SCALE:
            raise ConfigError(f"{n}: skew_scale {self.skew_scale} outside [{MIN_SKEW_SCALE}, {MAX_SKEW_SCALE}]")
        if self.max_oi_long > self.skew_scale or self.max_oi_short > self.skew_scale:
            raise ConfigError(f"{n}: open interest caps may not exceed skew_scale (fill price must stay positive)")
        if self.fallback_feed is not None and not (self.fallback_heartbeat > 0 and 0 < self.max_deviation <= MAX_FALLBACK_DEVIATION):
            raise ConfigError(f"{n}: a fallback feed needs fallback_heartbeat > 0 and max_deviation in (0, {MAX_FALLBACK_DEVIATION}]")
        if not MIN_POSITION_NOTIONAL <= self.min_position_notional <= MAX_POSITION_NOTIONAL:
            raise ConfigError(f"{n}: min_position_notional outside [{MIN_POSITION_NOTIONAL}, {MAX_POSITION_NOTIONAL}]")
        # DESIGN 5.3: liquidating yourself must never pay
        if self.liq_penalty * self.min_position_notional < min_keeper_reward:
            raise ConfigError(
                f"{n}: liq_penalty * min_position_notional = {self.liq_penalty * self.min_position_notional} "
                f"is below min_keeper_reward {min_keeper_reward}; liquidating yourself would pay"
            )

    def brackets_param(self) -> list[tuple[int, int]]:
        """The brackets as (cap, mmf) WAD tuples, the last cap max uint256."""
        return [(wad(b.cap) if b.cap is not None else 2**256 - 1, wad(b.mmf)) for b in self.bracket_list()]

    def params(self) -> tuple:
        """The MarketParams struct as a tuple, in WAD (horizon and tau in seconds)."""
        return (
            wad(self.imf),
            wad(self.im_multiplier),
            wad(self.liq_penalty),
            wad(self.taker_fee),
            wad(self.skew_scale),
            wad(self.max_oi_long),
            wad(self.max_oi_short),
            wad(self.min_position_notional),
            wad(self.max_funding_rate),
            wad(self.z),
            self.horizon,
            self.tau,
        )


class LiquidationConfig(_Strict):
    liq_target: Decimal
    keeper_share: Decimal
    min_keeper_reward: Decimal
    max_keeper_reward: Decimal

    def check(self) -> None:
        if not MIN_LIQ_TARGET <= self.liq_target <= MAX_LIQ_TARGET:
            raise ConfigError(f"liq_target {self.liq_target} outside [{MIN_LIQ_TARGET}, {MAX_LIQ_TARGET}]")
        if not 0 <= self.keeper_share <= 1:
            raise ConfigError(f"keeper_share {self.keeper_share} outside [0, 1]")
        if not 0 <= self.min_keeper_reward <= self.max_keeper_reward <= MAX_KEEPER_REWARD:
            raise ConfigError(f"keeper rewards need 0 <= min <= max <= {MAX_KEEPER_REWARD}")

    def params(self) -> tuple:
        return (wad(self.liq_target), wad(self.keeper_share), wad(self.min_keeper_reward), wad(self.max_keeper_reward))


class PoolConfig(_Strict):
    name: str = "Ballast LP USDC"
    symbol: str = "bUSDC"
    decimals_offset: int = Field(default=6, ge=0, le=18)
    max_pool_usage: Decimal = Decimal(1)
    reserve_factor: Decimal = Decimal("0.25")
    seed_assets: Decimal = Decimal(0)  # local only: tokens the deployer deposits at once

    def check(self) -> None:
        if not 0 < self.max_pool_usage <= MAX_POOL_USAGE:
            raise ConfigError(f"max_pool_usage {self.max_pool_usage} outside (0, {MAX_POOL_USAGE}]")
        if not 0 <= self.reserve_factor <= 1:
            raise ConfigError(f"reserve_factor {self.reserve_factor} outside [0, 1]")
        if len(self.name) > 25 or len(self.symbol) > 5:
            raise ConfigError("pool name is at most 25 characters and symbol at most 5")


class DeployConfig(_Strict):
    collateral: str | MockToken
    pool: PoolConfig = PoolConfig()
    liquidation: LiquidationConfig
    guardian: Optional[str] = None  # default: the deployer
    risk_delay: int = 86400  # seconds a risk increase waits in RiskConfig's timelock
    markets: list[MarketConfig]

    @model_validator(mode="after")
    def _check(self) -> "DeployConfig":
        try:
            self.liquidation.check()
            self.pool.check()
            if not 1 <= len(self.markets) <= 16:
                raise ConfigError("between 1 and 16 markets")
            names = [m.name for m in self.markets]
            if len(set(names)) != len(names):
                raise ConfigError("market names must be unique")
            if not MIN_RISK_DELAY <= self.risk_delay <= MAX_RISK_DELAY:
                raise ConfigError(f"risk_delay outside [{MIN_RISK_DELAY}, {MAX_RISK_DELAY}] seconds")
            for m in self.markets:
                m.check(self.liquidation.min_keeper_reward)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self

    @property
    def uses_mocks(self) -> bool:
        return isinstance(self.collateral, MockToken) or any(
            isinstance(m.feed, MockFeed) or isinstance(m.fallback_feed, MockFeed) for m in self.markets
        )


def load_config(path: str | Path) -> DeployConfig:
    """Reads and checks a YAML deployment config; raises ConfigError with a readable reason."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    try:
        return DeployConfig.model_validate(raw)
    except Exception as e:  # pydantic's ValidationError lists every field
        raise ConfigError(f"{p}: {e}") from None


def deploy(cfg: DeployConfig, deployer: Any, project: Any, chain: Any, *, local: bool) -> dict[str, Any]:
    """Deploys mocks (local only), pool, engine, oracles and markets; returns the deployment record.

    `deployer` is an Ape account; `project` and `chain` are Ape's managers.
    """
    if cfg.uses_mocks and not local:
        raise ConfigError("mock tokens and feeds can only be deployed on a local chain")
    start_block = chain.blocks.head.number
    tx = {"sender": deployer}
    mocks: dict[str, str] = {}

    if isinstance(cfg.collateral, MockToken):
        c = cfg.collateral
        if c.kind == "usdc":
            token = deployer.deploy(project.MockUSDC)
        elif c.kind == "usdt":
            token = deployer.deploy(project.MockUSDT)
        else:
            token = deployer.deploy(project.MockERC20, c.name, c.symbol, c.decimals)
        mocks["collateral"] = token.address
    else:
        token = _erc20_at(project, cfg.collateral)

    pool = deployer.deploy(project.RiskPool, token.address, cfg.pool.decimals_offset, cfg.pool.name, cfg.pool.symbol)
    guardian = cfg.guardian or deployer.address
    config = deployer.deploy(project.RiskConfig, guardian, cfg.risk_delay)
    engine = deployer.deploy(project.MarginEngine, token.address, pool.address, config.address)
    config.set_engine(
        engine.address, cfg.liquidation.params(), wad(cfg.pool.max_pool_usage), wad(cfg.pool.reserve_factor), **tx
    )
    pool.set_engine(engine.address, **tx)

    markets = []
    for m in cfg.markets:
        if isinstance(m.feed, MockFeed):
            answer = int(m.feed.answer * 10**m.feed.decimals)
            feed = deployer.deploy(project.MockAggregator, m.feed.decimals, answer, m.feed.description or m.name)
            feed_address = feed.address
            mocks[f"feed:{m.name}"] = feed_address
        else:
            feed_address = m.feed
        fallback_address = ZERO_ADDRESS
        if isinstance(m.fallback_feed, MockFeed):
            answer = int(m.fallback_feed.answer * 10**m.fallback_feed.decimals)
            fb = deployer.deploy(project.MockAggregator, m.fallback_feed.decimals, answer, m.fallback_feed.description or m.name)
            fallback_address = fb.address
            mocks[f"fallback:{m.name}"] = fallback_address
        elif m.fallback_feed:
            fallback_address = m.fallback_feed
        oracle = deployer.deploy(
            project.ChainlinkOracle,
            feed_address,
            m.heartbeat,
            m.sequencer_feed or ZERO_ADDRESS,
            m.grace_period,
            fallback_address,
            m.fallback_heartbeat,
            wad(m.max_deviation),
        )
        config.add_market(oracle.address, m.params(), m.brackets_param(), **tx)
        markets.append(
            {"id": len(markets), "name": m.name, "oracle": oracle.address, "feed": feed_address, "heartbeat": m.heartbeat}
        )

    if local and cfg.pool.seed_assets > 0 and "collateral" in mocks:
        amount = int(cfg.pool.seed_assets * 10 ** token.decimals())
        token.mint(deployer.address, amount, **tx)
        token.approve(pool.address, amount, **tx)
        pool.deposit(amount, deployer.address, **tx)

    return {
        "network": chain.provider.network.name,
        "ecosystem": chain.provider.network.ecosystem.name,
        "chain_id": chain.chain_id,
        "deploy_block": start_block + 1,
        "deployer": deployer.address,
        "contracts": {
            "engine": engine.address,
            "config": config.address,
            "pool": pool.address,
            "collateral": token.address,
            "guardian": guardian,
            "oracles": {m["name"]: m["oracle"] for m in markets},
        },
        "collateral_decimals": int(token.decimals()),
        "markets": markets,
        "mocks": mocks,
    }


def deploy_to_node(url: str, config: Path | None = None) -> tuple[dict[str, Any], str]:
    """Deploys `config` (default config/local.yaml) through Ape to a local node already running at
    `url`, as Ape's first test account; returns the deployment record and the deployer address."""
    from ape import accounts, chain, networks, project

    cfg = load_config(config or ROOT / "config" / "local.yaml")
    with networks.ethereum.local.use_provider("foundry", provider_settings={"host": url}):
        deployer = accounts.test_accounts[0]
        record = deploy(cfg, deployer, project, chain, local=True)
    return record, deployer.address


def _erc20_at(project: Any, address: str) -> Any:
    """An existing ERC-20 through the mock's ABI (only the standard functions are used)."""
    return project.MockERC20.at(address)


def write_deployment(record: dict[str, Any], directory: Path | None = None) -> Path:
    """Writes deployments/<network>.json and returns its path."""
    d = directory or ROOT / "deployments"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{record['network']}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def local_contracts(record: dict[str, Any], project: Any) -> tuple[Any, Any, Any, list[Any]]:
    """(engine, pool, collateral, feeds) of a local deployment with mock USDC and mock feeds."""
    c = record["contracts"]
    return (
        project.MarginEngine.at(c["engine"]),
        project.RiskPool.at(c["pool"]),
        project.MockUSDC.at(c["collateral"]),
        [project.MockAggregator.at(m["feed"]) for m in record["markets"]],
    )
