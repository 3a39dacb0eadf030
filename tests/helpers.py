"""Shared test helpers: a deployed protocol with dollar-speaking helpers, built through the deploy
script's own code, and the exact solvency check."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

from _deploy import DeployConfig, deploy, load_config  # noqa: E402

WAD = 10**18
ETH, BTC = 0, 1
FEED_DECIMALS = 8


@dataclass
class Env:
    """A deployed protocol with helpers that speak in dollars and whole units."""

    engine: Any
    config: Any
    pool: Any
    token: Any
    feeds: list[Any]
    oracles: list[Any]
    deployer: Any
    decimals: int
    record: dict
    touched: set = field(default_factory=set)
    # a fee-on-transfer token can leave a recorded claim on the pool (negative pool_owed)
    pool_debt_ok: bool = False

    @property
    def scale(self) -> int:
        return 10 ** (18 - self.decimals)

    def units(self, usd: Decimal | int | str) -> int:
        """Token units of a dollar amount."""
        return int(Decimal(str(usd)) * 10**self.decimals)

    def mint(self, who, usd) -> int:
        amount = self.units(usd)
        self.token.mint(who.address, amount, sender=self.deployer)
        return amount

    def fund(self, who, usd) -> int:
        """Mints tokens to `who` and deposits them as collateral."""
        amount = self.mint(who, usd)
        self.token.approve(self.engine.address, amount, sender=who)
        self.engine.deposit(amount, sender=who)
        self.touched.add(who.address)
        return amount

    def seed_pool(self, who, usd) -> int:
        amount = self.mint(who, usd)
        self.token.approve(self.pool.address, amount, sender=who)
        self.pool.deposit(amount, sender=who)
        return amount

    def set_price(self, market_id: int, usd) -> int:
        """Moves a mock feed; returns the WAD price the oracle will report."""
        answer = int(Decimal(str(usd)) * 10**FEED_DECIMALS)
        self.feeds[market_id].set_answer(answer, sender=self.deployer)
        return answer * 10 ** (18 - FEED_DECIMALS)

    def trade(self, who, market_id: int, size, limit: int | None = None):
        """Trades `size` whole units (Decimal ok) with a wide price limit unless one is given."""
        delta = int(Decimal(str(size)) * WAD)
        if limit is None:
            limit = 2**256 - 1 if delta > 0 else 0
        self.touched.add(who.address)
        return self.engine.trade(market_id, delta, limit, sender=who)

    def trade_isolated(self, who, market_id: int, size, margin_usd=0, limit: int | None = None):
        """An isolated trade of `size` whole units, moving `margin_usd` of cross collateral into its
        margin first (negative: back out)."""
        delta = int(Decimal(str(size)) * WAD)
        if limit is None:
            limit = 2**256 - 1 if delta > 0 else 0
        self.touched.add(who.address)
        return self.engine.trade_isolated(market_id, delta, limit, self.units(margin_usd), sender=who)

    def collateral_sum(self) -> int:
        """Cross collateral plus isolated margin of every account the test touched."""
        total = 0
        n = len(self.feeds)
        for a in self.touched:
            total += self.engine.collateral(a)
            mask = self.engine.position_mask(a) >> 16
            total += sum(self.engine.position(a, m).margin for m in range(n) if (mask >> m) & 1)
        return total


def model_params(env: Env, market_id: int):
    """The model's flat-mmf MarketParams of a market: its first bracket's fraction as mmf (the
    core tests run with one bracket, no volatility term and no funding)."""
    import model

    p = env.engine.market(market_id).params
    mmf = env.config.brackets(market_id)[0].mmf
    return model.MarketParams(mmf, p.imf, p.im_multiplier, p.liq_penalty, p.taker_fee, p.skew_scale, p.min_position_notional)


def base_config(kind: str = "usdc", decimals: int = 6, advanced: bool = False, **liq_overrides) -> DeployConfig:
    """config/local.yaml with another collateral token if asked.

    Unless `advanced`, each market keeps only its first bracket's fraction as a flat mmf, no
    volatility term and no funding: the protocol-core tests compare against the flat-mmf model.
    """
    cfg = load_config(ROOT / "config" / "local.yaml")
    raw = cfg.model_dump(mode="python")
    raw["collateral"] = {"kind": kind, "name": "Test USD", "symbol": "TUSD", "decimals": decimals}
    raw["liquidation"].update(liq_overrides)
    if not advanced:
        for m in raw["markets"]:
            m["mmf"] = m.pop("brackets")[0]["mmf"]
            m["brackets"] = None
            m["z"] = 0
            m["max_funding_rate"] = 0
    return DeployConfig.model_validate(raw)


def make_env(project, chain, deployer, lp, cfg: DeployConfig, pool_usd=1_000_000) -> Env:
    record = deploy(cfg, deployer, project, chain, local=True)
    c = record["contracts"]
    token_cls = {"usdc": project.MockUSDC, "usdt": project.MockUSDT}.get(getattr(cfg.collateral, "kind", ""), project.MockERC20)
    env = Env(
        engine=project.MarginEngine.at(c["engine"]),
        config=project.RiskConfig.at(c["config"]),
        pool=project.RiskPool.at(c["pool"]),
        token=token_cls.at(c["collateral"]),
        feeds=[project.MockAggregator.at(m["feed"]) for m in record["markets"]],
        oracles=[project.ChainlinkOracle.at(m["oracle"]) for m in record["markets"]],
        deployer=deployer,
        decimals=record["collateral_decimals"],
        record=record,
    )
    if pool_usd:
        env.seed_pool(lp, pool_usd)
    return env


def assert_solvent(env: Env, pool_debt_ok: bool | None = None) -> None:
    """Tokens held equal what is owed, exactly: engine_balance * scale == sum(collateral) +
    sum(isolated margin) + insurance + pool_owed, where pool_owed in [0, scale) is dust owned by the pool (never by an
    account), and the pool's assets are its balance."""
    engine_wad = env.token.balanceOf(env.engine.address) * env.scale
    owed = env.engine.pool_owed()
    if pool_debt_ok is None:
        pool_debt_ok = env.pool_debt_ok
    if pool_debt_ok:  # a recorded claim on the pool (it paid less than asked) may stand
        assert owed < env.scale
    else:
        assert 0 <= owed < env.scale, f"pool_owed {owed} outside [0, scale)"
    assert engine_wad == env.collateral_sum() + env.engine.insurance_fund() + owed
    assert env.pool.totalAssets() == env.token.balanceOf(env.pool.address)
