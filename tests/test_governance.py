"""Governance: owner-only setters, the hard bounds of every parameter, events, two-step ownership,
the guardian's pause switch, the constructor's token check and the deploy script's config checks."""

from __future__ import annotations

import ape
import pytest
import yaml

from helpers import ROOT, WAD, base_config
from _deploy import ConfigError, DeployConfig, deploy, load_config

NOT_OWNER = "ownable: caller is not the owner"
ZERO_ADDRESS = "0x" + "00" * 20

# The engine's hard bounds (contracts/MarginEngine.vy, CONSTANTS), restated here on purpose.
MIN_MMF = 10**15
MAX_MMF = 5 * 10**17
MAX_IMF = 10**18
MAX_IM_MULTIPLIER = 10 * WAD
MAX_LIQ_PENALTY = 10**17
MAX_TAKER_FEE = 10**16
MIN_SKEW_SCALE = WAD
MAX_SKEW_SCALE = 10**36
MIN_POSITION_NOTIONAL = WAD
MAX_POSITION_NOTIONAL_FLOOR = 10**24
MIN_LIQ_TARGET = WAD
MAX_LIQ_TARGET = 3 * WAD
MAX_KEEPER_REWARD = 10**22
MAX_POOL_USAGE = 10 * WAD
MAX_RESERVE_FACTOR = WAD
MAX_MARKETS = 16

# config/local.yaml, ETH-USD, in WAD
ETH_PARAMS = dict(
    mmf=5 * 10**16,
    imf=10**17,
    im_multiplier=15 * 10**17,
    liq_penalty=2 * 10**16,
    taker_fee=5 * 10**14,
    skew_scale=1_000_000 * WAD,
    max_oi_long=50_000 * WAD,
    max_oi_short=50_000 * WAD,
    min_position_notional=50 * WAD,
)
FIELDS = list(ETH_PARAMS)
LIQ = dict(liq_target=125 * 10**16, keeper_share=3 * 10**17, min_keeper_reward=5 * 10**17, max_keeper_reward=500 * WAD)
LIQ_FIELDS = list(LIQ)


def mp(**overrides) -> tuple:
    """ETH-USD market params as a MarketParams tuple, with overrides."""
    d = {**ETH_PARAMS, **overrides}
    return tuple(d[f] for f in FIELDS)


def lp_(**overrides) -> tuple:
    d = {**LIQ, **overrides}
    return tuple(d[f] for f in LIQ_FIELDS)


def as_tuple(struct, fields) -> tuple:
    """A decoded struct (tuple-like or attribute-like) as a plain tuple."""
    if isinstance(struct, (tuple, list)):
        return tuple(struct)
    if isinstance(struct, dict):
        return tuple(struct[f] for f in fields)
    return tuple(getattr(struct, f) for f in fields)


# --- owner-only ----------------------------------------------------------------------------------


def test_add_market__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.engine.add_market(env.oracles[0].address, mp(), sender=trader)
    assert env.engine.n_markets() == 2


def test_set_market_params__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.engine.set_market_params(0, mp(mmf=6 * 10**16), sender=trader)
    assert env.engine.market(0).params.mmf == ETH_PARAMS["mmf"]


def test_set_liquidation_params__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.engine.set_liquidation_params(lp_(keeper_share=0), sender=trader)
    assert env.config.liquidation_params().keeper_share == LIQ["keeper_share"]


def test_set_exposure__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.engine.set_exposure(WAD, 0, sender=trader)
    assert env.engine.reserve_factor() == 25 * 10**16


def test_set_guardian__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.engine.set_guardian(trader.address, sender=trader)
    assert env.engine.guardian() == env.deployer.address


def test_set_guardian__guardian_is_not_owner__reverts(env, deployer, guardian):
    env.engine.set_guardian(guardian.address, sender=deployer)
    with ape.reverts(NOT_OWNER):
        env.engine.set_guardian(guardian.address, sender=guardian)


# --- market parameter bounds (set_market_params on market 0, and add_market) --------------------

# (name, passing params at the bound, failing params one wei past it, reason)
# min_position_notional is raised where a small penalty would otherwise break the reward floor.
MARKET_BOUNDS = [
    ("mmf_min", dict(mmf=MIN_MMF, liq_penalty=MIN_MMF, min_position_notional=500 * WAD),
     dict(mmf=MIN_MMF - 1, liq_penalty=MIN_MMF - 1, min_position_notional=500 * WAD), "engine: mmf out of bounds"),
    ("mmf_max", dict(mmf=MAX_MMF, imf=MAX_MMF), dict(mmf=MAX_MMF + 1, imf=MAX_IMF), "engine: mmf out of bounds"),
    ("imf_below_mmf", dict(imf=ETH_PARAMS["mmf"]), dict(imf=ETH_PARAMS["mmf"] - 1), "engine: imf out of bounds"),
    ("imf_max", dict(imf=MAX_IMF), dict(imf=MAX_IMF + 1), "engine: imf out of bounds"),
    ("im_multiplier_min", dict(im_multiplier=WAD), dict(im_multiplier=WAD - 1), "engine: im multiplier out of bounds"),
    ("im_multiplier_max", dict(im_multiplier=MAX_IM_MULTIPLIER), dict(im_multiplier=MAX_IM_MULTIPLIER + 1),
     "engine: im multiplier out of bounds"),
    ("penalty_above_mmf", dict(liq_penalty=ETH_PARAMS["mmf"]), dict(liq_penalty=ETH_PARAMS["mmf"] + 1),
     "engine: penalty out of bounds"),
    ("penalty_max", dict(mmf=2 * 10**17, imf=2 * 10**17, liq_penalty=MAX_LIQ_PENALTY),
     dict(mmf=2 * 10**17, imf=2 * 10**17, liq_penalty=MAX_LIQ_PENALTY + 1), "engine: penalty out of bounds"),
    ("fee_max", dict(taker_fee=MAX_TAKER_FEE), dict(taker_fee=MAX_TAKER_FEE + 1), "engine: fee out of bounds"),
    ("skew_scale_min", dict(skew_scale=MIN_SKEW_SCALE, max_oi_long=WAD // 2, max_oi_short=WAD // 2),
     dict(skew_scale=MIN_SKEW_SCALE - 1, max_oi_long=WAD // 2, max_oi_short=WAD // 2),
     "engine: skew scale out of bounds"),
    ("skew_scale_max", dict(skew_scale=MAX_SKEW_SCALE), dict(skew_scale=MAX_SKEW_SCALE + 1),
     "engine: skew scale out of bounds"),
    ("oi_long_cap", dict(max_oi_long=ETH_PARAMS["skew_scale"]), dict(max_oi_long=ETH_PARAMS["skew_scale"] + 1),
     "engine: oi cap above skew scale"),
    ("oi_short_cap", dict(max_oi_short=ETH_PARAMS["skew_scale"]), dict(max_oi_short=ETH_PARAMS["skew_scale"] + 1),
     "engine: oi cap above skew scale"),
    ("min_notional_max", dict(min_position_notional=MAX_POSITION_NOTIONAL_FLOOR),
     dict(min_position_notional=MAX_POSITION_NOTIONAL_FLOOR + 1), "engine: min notional out of bounds"),
    # 0.02 * 25 USD = 0.5 USD = min_keeper_reward exactly; one wei of notional less rounds below it
    ("reward_floor", dict(min_position_notional=25 * WAD), dict(min_position_notional=25 * WAD - 1),
     "engine: penalty below reward floor"),
]


@pytest.mark.parametrize("ok, bad, reason", [b[1:] for b in MARKET_BOUNDS], ids=[b[0] for b in MARKET_BOUNDS])
def test_set_market_params__one_wei_past_bound__reverts(env, deployer, ok, bad, reason):
    with ape.reverts(reason):
        env.engine.set_market_params(0, mp(**bad), sender=deployer)
    env.engine.set_market_params(0, mp(**ok), sender=deployer)
    assert as_tuple(env.engine.market(0).params, FIELDS) == mp(**ok)


def test_set_market_params__min_notional_floor__bound_passes_one_wei_below_reverts(env, deployer):
    # a 1 USD floor only pays a reward floor of 0 (the penalty is at most 10%)
    env.engine.set_liquidation_params(lp_(min_keeper_reward=0), sender=deployer)
    with ape.reverts("engine: min notional out of bounds"):
        env.engine.set_market_params(0, mp(min_position_notional=MIN_POSITION_NOTIONAL - 1), sender=deployer)
    env.engine.set_market_params(0, mp(min_position_notional=MIN_POSITION_NOTIONAL), sender=deployer)
    assert env.engine.market(0).params.min_position_notional == MIN_POSITION_NOTIONAL


def test_add_market__bad_params__reverts_like_set_market_params(env, deployer):
    with ape.reverts("engine: penalty below reward floor"):
        env.engine.add_market(env.oracles[0].address, mp(min_position_notional=25 * WAD - 1), sender=deployer)
    with ape.reverts("engine: oi cap above skew scale"):
        env.engine.add_market(env.oracles[0].address, mp(max_oi_long=ETH_PARAMS["skew_scale"] + 1), sender=deployer)
    assert env.engine.n_markets() == 2


def test_add_market__zero_oracle__reverts(env, deployer):
    with ape.reverts("engine: zero address"):
        env.engine.add_market(ZERO_ADDRESS, mp(), sender=deployer)


def test_set_market_params__unknown_market__reverts(env, deployer):
    with ape.reverts("engine: unknown market"):
        env.engine.set_market_params(2, mp(), sender=deployer)
    with ape.reverts("engine: unknown market"):
        env.engine.market(2)


def test_trade__unknown_market__reverts(env, trader):
    env.fund(trader, 1_000)
    with ape.reverts("engine: unknown market"):
        env.engine.trade(2, WAD, 2**256 - 1, sender=trader)


def test_add_market__sixteen_markets_max__seventeenth_reverts(env, deployer):
    oracle = env.oracles[0].address
    for _ in range(MAX_MARKETS - env.engine.n_markets()):
        env.engine.add_market(oracle, mp(), sender=deployer)
    assert env.engine.n_markets() == MAX_MARKETS
    with ape.reverts("engine: too many markets"):
        env.engine.add_market(oracle, mp(), sender=deployer)
    assert env.engine.n_markets() == MAX_MARKETS
    # a liquidation-parameter change still checks every one of the 16 markets
    with ape.reverts("engine: penalty below reward floor"):
        env.engine.set_liquidation_params(lp_(min_keeper_reward=75 * 10**16 + 1), sender=deployer)


# --- liquidation parameter bounds ------------------------------------------------------------------

# ETH-USD pays 0.02 * 50 = 1 USD and BTC-USD 0.015 * 50 = 0.75 USD: the reward floor may be 0.75 USD.
LIQ_BOUNDS = [
    ("target_min", dict(liq_target=MIN_LIQ_TARGET), dict(liq_target=MIN_LIQ_TARGET - 1), "engine: target out of bounds"),
    ("target_max", dict(liq_target=MAX_LIQ_TARGET), dict(liq_target=MAX_LIQ_TARGET + 1), "engine: target out of bounds"),
    ("keeper_share_max", dict(keeper_share=WAD), dict(keeper_share=WAD + 1), "engine: keeper share out of bounds"),
    ("min_above_max", dict(min_keeper_reward=5 * 10**17, max_keeper_reward=5 * 10**17),
     dict(min_keeper_reward=5 * 10**17 + 1, max_keeper_reward=5 * 10**17), "engine: reward out of bounds"),
    ("max_reward_cap", dict(max_keeper_reward=MAX_KEEPER_REWARD), dict(max_keeper_reward=MAX_KEEPER_REWARD + 1),
     "engine: reward out of bounds"),
    ("reward_floor", dict(min_keeper_reward=75 * 10**16), dict(min_keeper_reward=75 * 10**16 + 1),
     "engine: penalty below reward floor"),
]


@pytest.mark.parametrize("ok, bad, reason", [b[1:] for b in LIQ_BOUNDS], ids=[b[0] for b in LIQ_BOUNDS])
def test_set_liquidation_params__one_wei_past_bound__reverts(env, deployer, ok, bad, reason):
    with ape.reverts(reason):
        env.engine.set_liquidation_params(lp_(**bad), sender=deployer)
    env.engine.set_liquidation_params(lp_(**ok), sender=deployer)
    assert as_tuple(env.config.liquidation_params(), LIQ_FIELDS) == lp_(**ok)


# --- exposure bounds ---------------------------------------------------------------------------------

EXPOSURE_BOUNDS = [
    ("usage_zero", (1, 0), (0, 0), "engine: pool usage out of bounds"),
    ("usage_max", (MAX_POOL_USAGE, 0), (MAX_POOL_USAGE + 1, 0), "engine: pool usage out of bounds"),
    ("reserve_max", (WAD, MAX_RESERVE_FACTOR), (WAD, MAX_RESERVE_FACTOR + 1), "engine: reserve out of bounds"),
]


@pytest.mark.parametrize("ok, bad, reason", [b[1:] for b in EXPOSURE_BOUNDS], ids=[b[0] for b in EXPOSURE_BOUNDS])
def test_set_exposure__one_wei_past_bound__reverts(env, deployer, ok, bad, reason):
    with ape.reverts(reason):
        env.engine.set_exposure(*bad, sender=deployer)
    env.engine.set_exposure(*ok, sender=deployer)
    assert (env.engine.max_pool_usage(), env.engine.reserve_factor()) == ok


# --- events ---------------------------------------------------------------------------------------------


def test_add_market__emits_market_added_and_params(env, deployer):
    oracle = env.oracles[1].address
    params = mp(mmf=6 * 10**16, imf=12 * 10**16, taker_fee=10**15)
    tx = env.engine.add_market(oracle, params, sender=deployer)
    added = tx.decode_logs(env.engine.MarketAdded)
    assert [(e.market_id, e.oracle) for e in added] == [(2, oracle)]
    set_ = tx.decode_logs(env.engine.MarketParamsSet)
    assert len(set_) == 1
    assert set_[0].market_id == 2
    assert as_tuple(set_[0].params, FIELDS) == params
    m = env.engine.market(2)
    assert m.oracle == oracle
    assert as_tuple(m.params, FIELDS) == params
    assert (m.oi_long, m.oi_short) == (0, 0)
    assert env.engine.n_markets() == 3


def test_set_market_params__emits_market_params_set(env, deployer):
    params = mp(taker_fee=10**15, max_oi_long=1_000 * WAD)
    tx = env.engine.set_market_params(1, params, sender=deployer)
    logs = tx.decode_logs(env.engine.MarketParamsSet)
    assert len(logs) == 1
    assert logs[0].market_id == 1
    assert as_tuple(logs[0].params, FIELDS) == params
    assert as_tuple(env.engine.market(1).params, FIELDS) == params


def test_set_liquidation_params__emits_liquidation_params_set(env, deployer):
    params = lp_(liq_target=2 * WAD, keeper_share=5 * 10**17, min_keeper_reward=WAD // 4, max_keeper_reward=1_000 * WAD)
    tx = env.engine.set_liquidation_params(params, sender=deployer)
    logs = tx.decode_logs(env.engine.LiquidationParamsSet)
    assert len(logs) == 1
    assert as_tuple(logs[0].params, LIQ_FIELDS) == params
    assert as_tuple(env.config.liquidation_params(), LIQ_FIELDS) == params


def test_set_exposure__emits_exposure_params_set(env, deployer):
    tx = env.engine.set_exposure(2 * WAD, 5 * 10**17, sender=deployer)
    logs = tx.decode_logs(env.engine.ExposureParamsSet)
    assert [(e.max_pool_usage, e.reserve_factor) for e in logs] == [(2 * WAD, 5 * 10**17)]
    assert env.engine.max_pool_usage() == 2 * WAD
    assert env.engine.reserve_factor() == 5 * 10**17


def test_set_guardian__emits_guardian_set(env, deployer, guardian):
    tx = env.engine.set_guardian(guardian.address, sender=deployer)
    assert [e.guardian for e in tx.decode_logs(env.engine.GuardianSet)] == [guardian.address]
    assert env.engine.guardian() == guardian.address
    tx = env.engine.set_guardian(ZERO_ADDRESS, sender=deployer)
    assert [e.guardian for e in tx.decode_logs(env.engine.GuardianSet)] == [ZERO_ADDRESS]
    assert env.engine.guardian() == ZERO_ADDRESS


# --- two-step ownership ------------------------------------------------------------------------------


def test_ownership__two_step_transfer__new_owner_gets_rights_old_owner_loses_them(env, deployer, guardian):
    assert env.engine.owner() == deployer.address
    env.engine.transfer_ownership(guardian.address, sender=deployer)
    # nothing changes before the new owner accepts
    assert env.engine.owner() == deployer.address
    assert env.engine.pending_owner() == guardian.address
    env.engine.set_exposure(2 * WAD, 0, sender=deployer)
    with ape.reverts(NOT_OWNER):
        env.engine.set_exposure(3 * WAD, 0, sender=guardian)

    env.engine.accept_ownership(sender=guardian)
    assert env.engine.owner() == guardian.address
    assert env.engine.pending_owner() == ZERO_ADDRESS
    with ape.reverts(NOT_OWNER):
        env.engine.set_exposure(WAD, 0, sender=deployer)
    with ape.reverts(NOT_OWNER):
        env.engine.set_guardian(deployer.address, sender=deployer)
    env.engine.set_exposure(3 * WAD, 0, sender=guardian)
    assert env.engine.max_pool_usage() == 3 * WAD


def test_ownership__third_party_cannot_accept(env, deployer, guardian, trader):
    env.engine.transfer_ownership(guardian.address, sender=deployer)
    with ape.reverts("ownable_2step: caller is not the new owner"):
        env.engine.accept_ownership(sender=trader)
    assert env.engine.owner() == deployer.address
    assert env.engine.pending_owner() == guardian.address


def test_ownership__transfer_by_non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.engine.transfer_ownership(trader.address, sender=trader)
    assert env.engine.pending_owner() == ZERO_ADDRESS


# --- guardian pause switch ----------------------------------------------------------------------------


def test_set_paused_open__guardian__pauses_and_unpauses(env, deployer, guardian):
    env.engine.set_guardian(guardian.address, sender=deployer)
    tx = env.engine.set_paused_open(True, sender=guardian)
    assert [(e.paused, e.by) for e in tx.decode_logs(env.engine.PausedOpenSet)] == [(True, guardian.address)]
    assert env.engine.paused_open() is True
    env.engine.set_paused_open(False, sender=guardian)
    assert env.engine.paused_open() is False


def test_set_paused_open__owner__pauses(env, deployer, guardian):
    env.engine.set_guardian(guardian.address, sender=deployer)
    tx = env.engine.set_paused_open(True, sender=deployer)
    assert [(e.paused, e.by) for e in tx.decode_logs(env.engine.PausedOpenSet)] == [(True, deployer.address)]
    assert env.engine.paused_open() is True


def test_set_paused_open__other__reverts(env, deployer, guardian, trader):
    env.engine.set_guardian(guardian.address, sender=deployer)
    with ape.reverts("engine: not guardian"):
        env.engine.set_paused_open(True, sender=trader)
    assert env.engine.paused_open() is False


def test_set_paused_open__former_guardian__reverts(env, deployer, guardian, trader):
    env.engine.set_guardian(guardian.address, sender=deployer)
    env.engine.set_guardian(trader.address, sender=deployer)
    with ape.reverts("engine: not guardian"):
        env.engine.set_paused_open(True, sender=guardian)
    env.engine.set_paused_open(True, sender=trader)
    assert env.engine.paused_open() is True


# --- constructor ----------------------------------------------------------------------------------------
# Each failing deployment is sent by an account that never deploys anything else: Ape remembers the
# contract type at an address across isolation reverts and mis-decodes a revert at a reused address.


def _engine_args(token, pool):
    return (token, pool, lp_(), WAD, 25 * 10**16, ZERO_ADDRESS)


def test_constructor__token_with_19_decimals__reverts(project, env, deployer, accounts):
    token = project.MockERC20.deploy("Nineteen", "N19", 19, sender=deployer)
    assert token.decimals() == 19
    with ape.reverts("engine: token decimals"):
        project.MarginEngine.deploy(*_engine_args(token.address, env.pool.address), sender=accounts[15])


def test_constructor__token_with_18_decimals__deploys_with_scale_one(project, env, deployer):
    token = project.MockERC20.deploy("Eighteen", "N18", 18, sender=deployer)
    engine = project.MarginEngine.deploy(*_engine_args(token.address, env.pool.address), sender=deployer)
    assert engine.scale() == 1
    assert engine.owner() == deployer.address
    assert engine.collateral_token() == token.address


def test_constructor__zero_pool__reverts(project, env, accounts):
    with ape.reverts("engine: zero address"):
        project.MarginEngine.deploy(*_engine_args(env.token.address, ZERO_ADDRESS), sender=accounts[16])


def test_constructor__bad_liquidation_params__reverts(project, env, accounts):
    args = list(_engine_args(env.token.address, env.pool.address))
    args[2] = lp_(liq_target=MAX_LIQ_TARGET + 1)
    with ape.reverts("engine: target out of bounds"):
        project.MarginEngine.deploy(*args, sender=accounts[17])
    args[2] = lp_()
    args[3] = 0
    with ape.reverts("engine: pool usage out of bounds"):
        project.MarginEngine.deploy(*args, sender=accounts[17])


# --- deploy-config checks (scripts/_deploy.py) ------------------------------------------------------------


def _raw() -> dict:
    return yaml.safe_load((ROOT / "config" / "local.yaml").read_text())


def _write(tmp_path, raw) -> str:
    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_load_config__local_yaml__is_valid():
    cfg = load_config(ROOT / "config" / "local.yaml")
    assert [m.name for m in cfg.markets] == ["ETH-USD", "BTC-USD"]
    assert cfg.markets[0].params() == mp()
    assert cfg.liquidation.params() == lp_()


def _break_penalty_floor(raw):
    raw["markets"][0]["min_position_notional"] = 24  # 0.02 * 24 = 0.48 < 0.5


def _break_penalty_above_mmf(raw):
    raw["markets"][0]["liq_penalty"] = 0.06  # mmf 0.05


def _break_imf_below_mmf(raw):
    raw["markets"][0]["imf"] = 0.04  # mmf 0.05


def _break_oi_cap(raw):
    raw["markets"][1]["max_oi_short"] = 50001  # skew_scale 50000


def _break_unknown_field(raw):
    raw["markets"][0]["max_leverage"] = 20


CONFIG_BREAKS = [
    ("penalty_floor", _break_penalty_floor, "liquidating yourself would pay"),
    ("penalty_above_mmf", _break_penalty_above_mmf, "ETH-USD: liq_penalty 0.06 must be within [0, min(mmf"),
    ("imf_below_mmf", _break_imf_below_mmf, "ETH-USD: imf 0.04 must be within [mmf"),
    ("oi_cap", _break_oi_cap, "BTC-USD: open interest caps may not exceed skew_scale"),
    ("unknown_field", _break_unknown_field, "max_leverage"),
]


@pytest.mark.parametrize("brk, message", [c[1:] for c in CONFIG_BREAKS], ids=[c[0] for c in CONFIG_BREAKS])
def test_load_config__broken_constraint__raises_config_error(tmp_path, brk, message):
    raw = _raw()
    brk(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError, match=None) as info:
        load_config(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("brk, message", [c[1:] for c in CONFIG_BREAKS], ids=[c[0] for c in CONFIG_BREAKS])
def test_model_validate__broken_constraint__raises_value_error(brk, message):
    raw = _raw()
    brk(raw)
    with pytest.raises(ValueError) as info:
        DeployConfig.model_validate(raw)
    assert message in str(info.value)


def test_model_validate__unknown_field__says_extra_inputs_not_permitted():
    raw = _raw()
    raw["pool"]["fee"] = 0.01
    with pytest.raises(ValueError) as info:
        DeployConfig.model_validate(raw)
    assert "Extra inputs are not permitted" in str(info.value)
    assert "fee" in str(info.value)


def test_load_config__missing_file__raises_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_deploy__mocks_on_non_local_chain__raises_config_error(project, chain, deployer):
    cfg = base_config()
    assert cfg.uses_mocks
    nonce = deployer.nonce
    with pytest.raises(ConfigError, match="mock tokens and feeds can only be deployed on a local chain"):
        deploy(cfg, deployer, project, chain, local=False)
    assert deployer.nonce == nonce  # nothing was sent
