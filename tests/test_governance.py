"""Governance in RiskConfig: owner-only setters, two-step ownership, the guardian, the hard bounds of
every parameter, events, the risk timelock (increases wait, decreases apply at once) and the deploy
script's config checks. The engine takes parameters from its RiskConfig only."""

from __future__ import annotations

import ape
import pytest
import yaml

from helpers import ROOT, WAD, base_config
from _deploy import ConfigError, DeployConfig, deploy, load_config

NOT_OWNER = "ownable: caller is not the owner"
NOT_GUARDIAN = "config: not guardian"
NOT_CONFIG = "engine: not config"
ZERO_ADDRESS = "0x" + "00" * 20
MAX = 2**256 - 1
PARAMS, BRACKETS = 0, 1

# RiskConfig's hard bounds (contracts/RiskConfig.vy, CONSTANTS), restated here on purpose.
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
MAX_FUNDING_RATE = 10**17
MAX_Z = 10 * WAD
MAX_HORIZON = 7 * 86400
MIN_TAU, MAX_TAU = 60, 30 * 86400
MIN_LIQ_TARGET = WAD
MAX_LIQ_TARGET = 3 * WAD
MAX_KEEPER_REWARD = 10**22
REWARD_UNIT = 10**9
MAX_POOL_USAGE = 10 * WAD
MAX_RESERVE_FACTOR = WAD
MIN_RISK_DELAY, MAX_RISK_DELAY = 3600, 30 * 86400
MAX_MARKETS = 16
INF_CAP = 2**160 - 1

# ETH-USD of config/local.yaml as base_config() flattens it (one bracket, no volatility, no funding)
ETH_MMF = 5 * 10**16
ETH_BRACKETS = [(MAX, ETH_MMF)]
ETH_PARAMS = dict(
    imf=10**17,
    im_multiplier=15 * 10**17,
    liq_penalty=2 * 10**16,
    taker_fee=5 * 10**14,
    skew_scale=1_000_000 * WAD,
    max_oi_long=500_000 * WAD,
    max_oi_short=500_000 * WAD,
    min_position_notional=50 * WAD,
    max_funding_rate=0,
    z=0,
    horizon=3600,
    tau=14400,
)
FIELDS = list(ETH_PARAMS)
# fields whose rise (or, for tau, any change) is queued
RISK_FIELDS = ["imf", "im_multiplier", "liq_penalty", "taker_fee", "max_funding_rate", "z", "horizon"]
LIQ = dict(liq_target=125 * 10**16, keeper_share=3 * 10**17, min_keeper_reward=5 * 10**17, max_keeper_reward=500 * WAD)
LIQ_FIELDS = list(LIQ)
DELAY = 86400  # config/local.yaml risk_delay


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


def table(brackets) -> list:
    """Decoded brackets as [(cap, mmf), ...]."""
    return [as_tuple(b, ["cap", "mmf"]) for b in brackets]


def params_of(env, market_id) -> tuple:
    return as_tuple(env.engine.market(market_id).params, FIELDS)


def params_lower(old: tuple, new: tuple) -> bool:
    """The spec of an immediate parameter change: no risk field rises and tau is unchanged."""
    o, n = dict(zip(FIELDS, old)), dict(zip(FIELDS, new))
    return all(n[f] <= o[f] for f in RISK_FIELDS) and n["tau"] == o["tau"]


def rate_at(brackets, x) -> int:
    for cap, mmf in brackets:
        if x < cap:
            return mmf
    return brackets[-1][1]


def brackets_lower(old, new) -> bool:
    """The spec of an immediate bracket change: the marginal fraction falls or stays everywhere."""
    points = {0} | {c for c, _ in old + new if c != MAX}
    return all(rate_at(new, x) <= rate_at(old, x) for x in points)


def maintenance(brackets, notional) -> int:
    """The maintenance requirement of a notional under brackets, no volatility floor, rounded up."""
    total, lower = 0, 0
    for cap, mmf in brackets:
        if notional <= lower:
            break
        total += (min(notional, cap) - lower) * mmf
        lower = cap
    return -(-total // WAD)


def queued_log(tx, env):
    return [(e.market_id, e.kind, e.eta) for e in tx.decode_logs(env.config.RiskChangeQueued)]


def ts(chain, tx) -> int:
    return chain.blocks[tx.block_number].timestamp


def refresh_prices(env, prices=(2000, 60000)):
    """Writes fresh rounds so that the oracles are not stale after a jump in time."""
    for m, p in enumerate(prices):
        env.set_price(m, p)


def add_market(env, params=None, brackets=None) -> int:
    params = mp() if params is None else params
    brackets = ETH_BRACKETS if brackets is None else brackets
    env.config.add_market(env.oracles[0].address, params, brackets, sender=env.deployer)
    return env.engine.n_markets() - 1


# --- owner-only ----------------------------------------------------------------------------------


def test_add_market__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.config.add_market(env.oracles[0].address, mp(), ETH_BRACKETS, sender=trader)
    assert env.engine.n_markets() == 2


def test_set_market_params__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.config.set_market_params(0, mp(taker_fee=0), sender=trader)
    assert params_of(env, 0) == mp()


def test_set_brackets__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.config.set_brackets(0, [(MAX, 4 * 10**16)], sender=trader)
    assert table(env.config.brackets(0)) == ETH_BRACKETS


def test_set_liquidation_params__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.config.set_liquidation_params(lp_(keeper_share=0), sender=trader)
    assert env.config.liquidation_params().keeper_share == LIQ["keeper_share"]


def test_set_exposure__non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.config.set_exposure(WAD, 0, sender=trader)
    assert env.engine.reserve_factor() == 25 * 10**16


def test_set_risk_delay__non_owner__reverts(env, guardian):
    with ape.reverts(NOT_OWNER):
        env.config.set_risk_delay(MIN_RISK_DELAY, sender=guardian)
    assert env.config.risk_delay() == DELAY


def test_set_guardian__non_owner_or_guardian__reverts(env, deployer, guardian, trader):
    env.config.set_guardian(guardian.address, sender=deployer)
    with ape.reverts(NOT_OWNER):
        env.config.set_guardian(trader.address, sender=trader)
    with ape.reverts(NOT_OWNER):
        env.config.set_guardian(trader.address, sender=guardian)
    assert env.config.guardian() == guardian.address


def test_set_engine__non_owner__reverts(project, deployer, trader):
    config = project.RiskConfig.deploy(deployer.address, DELAY, sender=deployer)
    with ape.reverts(NOT_OWNER):
        config.set_engine(ZERO_ADDRESS, lp_(), WAD, 0, sender=trader)
    assert config.engine() == ZERO_ADDRESS


# --- the engine takes parameters from its RiskConfig only -------------------------------------------


def test_engine_setters__anyone_but_config__revert(env, deployer, trader):
    for who in (deployer, trader):
        with ape.reverts(NOT_CONFIG):
            env.engine.set_market(0, ZERO_ADDRESS, mp(taker_fee=0), 0, sender=who)
        with ape.reverts(NOT_CONFIG):
            env.engine.set_brackets(0, [0] * 8, sender=who)
        with ape.reverts(NOT_CONFIG):
            env.engine.set_globals(lp_(), WAD, 0, sender=who)
        with ape.reverts(NOT_CONFIG):
            env.engine.set_paused_open(True, sender=who)
    assert params_of(env, 0) == mp()
    assert env.engine.max_pool_usage() == WAD
    assert env.engine.paused_open() is False


# --- set_engine ------------------------------------------------------------------------------------


def test_set_engine__second_time__reverts(env, deployer):
    with ape.reverts("config: engine already set"):
        env.config.set_engine(env.engine.address, lp_(), WAD, 0, sender=deployer)
    assert env.config.engine() == env.engine.address


def test_set_engine__engine_of_another_config__reverts(project, env, deployer):
    config = project.RiskConfig.deploy(deployer.address, DELAY, sender=deployer)
    with ape.reverts("config: engine of another config"):
        config.set_engine(env.engine.address, lp_(), WAD, 0, sender=deployer)
    assert config.engine() == ZERO_ADDRESS


def test_set_engine__before__governance_reverts_engine_not_set(project, env, deployer):
    config = project.RiskConfig.deploy(deployer.address, DELAY, sender=deployer)
    with ape.reverts("config: engine not set"):
        config.add_market(env.oracles[0].address, mp(), ETH_BRACKETS, sender=deployer)
    with ape.reverts("config: engine not set"):
        config.set_paused_open(True, sender=deployer)


def test_set_engine__engine_naming_it__sets_once_with_globals(project, env, deployer):
    config = project.RiskConfig.deploy(deployer.address, DELAY, sender=deployer)
    engine = project.MarginEngine.deploy(env.token.address, env.pool.address, config.address, sender=deployer)
    tx = config.set_engine(engine.address, lp_(keeper_share=WAD), 2 * WAD, 10**17, sender=deployer)
    assert [e.engine for e in tx.decode_logs(config.EngineSet)] == [engine.address]
    assert config.engine() == engine.address
    assert as_tuple(config.liquidation_params(), LIQ_FIELDS) == lp_(keeper_share=WAD)
    assert (engine.max_pool_usage(), engine.reserve_factor()) == (2 * WAD, 10**17)
    with ape.reverts("config: engine already set"):
        config.set_engine(engine.address, lp_(), WAD, 0, sender=deployer)


def test_constructor__risk_delay_out_of_bounds__reverts(project, deployer, accounts):
    # failing deployments from accounts that deploy nothing else (Ape mis-decodes reused addresses)
    with ape.reverts("config: delay out of bounds"):
        project.RiskConfig.deploy(deployer.address, MIN_RISK_DELAY - 1, sender=accounts[15])
    with ape.reverts("config: delay out of bounds"):
        project.RiskConfig.deploy(deployer.address, MAX_RISK_DELAY + 1, sender=accounts[16])
    c = project.RiskConfig.deploy(deployer.address, MIN_RISK_DELAY, sender=deployer)
    assert (c.risk_delay(), c.owner(), c.guardian()) == (MIN_RISK_DELAY, deployer.address, deployer.address)


# --- market parameter bounds (set_market_params on a listed market, and add_market) --------------

# (name, brackets and params the market is listed with (None: market 0), passing overrides at the
# bound, failing overrides one wei past it, reason)
PENALTY_TABLE = [(MAX, 2 * 10**17)]
MARKET_BOUNDS = [
    ("imf_below_mmf", None, dict(imf=ETH_MMF), dict(imf=ETH_MMF - 1), "config: imf out of bounds"),
    ("imf_max", None, dict(imf=MAX_IMF), dict(imf=MAX_IMF + 1), "config: imf out of bounds"),
    ("im_multiplier_min", None, dict(im_multiplier=WAD), dict(im_multiplier=WAD - 1), "config: im multiplier out of bounds"),
    ("im_multiplier_max", None, dict(im_multiplier=MAX_IM_MULTIPLIER), dict(im_multiplier=MAX_IM_MULTIPLIER + 1),
     "config: im multiplier out of bounds"),
    ("penalty_above_mmf", None, dict(liq_penalty=ETH_MMF), dict(liq_penalty=ETH_MMF + 1), "config: penalty out of bounds"),
    ("penalty_max", (PENALTY_TABLE, dict(imf=2 * 10**17)), dict(imf=2 * 10**17, liq_penalty=MAX_LIQ_PENALTY),
     dict(imf=2 * 10**17, liq_penalty=MAX_LIQ_PENALTY + 1), "config: penalty out of bounds"),
    ("fee_max", None, dict(taker_fee=MAX_TAKER_FEE), dict(taker_fee=MAX_TAKER_FEE + 1), "config: fee out of bounds"),
    ("skew_scale_min", None, dict(skew_scale=MIN_SKEW_SCALE, max_oi_long=WAD // 2, max_oi_short=WAD // 2),
     dict(skew_scale=MIN_SKEW_SCALE - 1, max_oi_long=WAD // 2, max_oi_short=WAD // 2), "config: skew scale out of bounds"),
    ("skew_scale_max", None, dict(skew_scale=MAX_SKEW_SCALE), dict(skew_scale=MAX_SKEW_SCALE + 1),
     "config: skew scale out of bounds"),
    ("oi_long_cap", None, dict(max_oi_long=ETH_PARAMS["skew_scale"]), dict(max_oi_long=ETH_PARAMS["skew_scale"] + 1),
     "config: oi cap above skew scale"),
    ("oi_short_cap", None, dict(max_oi_short=ETH_PARAMS["skew_scale"]), dict(max_oi_short=ETH_PARAMS["skew_scale"] + 1),
     "config: oi cap above skew scale"),
    ("min_notional_max", None, dict(min_position_notional=MAX_POSITION_NOTIONAL_FLOOR),
     dict(min_position_notional=MAX_POSITION_NOTIONAL_FLOOR + 1), "config: min notional out of bounds"),
    ("funding_max", None, dict(max_funding_rate=MAX_FUNDING_RATE), dict(max_funding_rate=MAX_FUNDING_RATE + 1),
     "config: funding out of bounds"),
    ("z_max", None, dict(z=MAX_Z), dict(z=MAX_Z + 1), "config: volatility out of bounds"),
    ("horizon_max", None, dict(horizon=MAX_HORIZON), dict(horizon=MAX_HORIZON + 1), "config: volatility out of bounds"),
    ("tau_min", None, dict(tau=MIN_TAU), dict(tau=MIN_TAU - 1), "config: tau out of bounds"),
    ("tau_max", None, dict(tau=MAX_TAU), dict(tau=MAX_TAU + 1), "config: tau out of bounds"),
    # 0.02 * 25 USD = 0.5 USD = min_keeper_reward exactly; one wei of notional less rounds below it
    ("reward_floor", None, dict(min_position_notional=25 * WAD), dict(min_position_notional=25 * WAD - 1),
     "config: penalty below reward floor"),
]
BOUND_IDS = [b[0] for b in MARKET_BOUNDS]


@pytest.mark.parametrize("listed, ok, bad, reason", [b[1:] for b in MARKET_BOUNDS], ids=BOUND_IDS)
def test_set_market_params__one_wei_past_bound__reverts_at_bound_passes(env, deployer, listed, ok, bad, reason):
    m = 0 if listed is None else add_market(env, mp(**listed[1]), listed[0])
    old = params_of(env, m)
    with ape.reverts(reason):
        env.config.set_market_params(m, mp(**bad), sender=deployer)
    assert env.config.pending_params(m).eta == 0
    tx = env.config.set_market_params(m, mp(**ok), sender=deployer)
    # within the bounds it is taken: at once when nothing rises, else queued
    if params_lower(old, mp(**ok)):
        assert tx.return_value is True
        assert params_of(env, m) == mp(**ok)
    else:
        assert tx.return_value is False
        assert as_tuple(env.config.pending_params(m).params, FIELDS) == mp(**ok)
        assert params_of(env, m) == old


@pytest.mark.parametrize("listed, ok, bad, reason", [b[1:] for b in MARKET_BOUNDS], ids=BOUND_IDS)
def test_add_market__one_wei_past_bound__reverts_at_bound_passes(env, deployer, listed, ok, bad, reason):
    brackets = ETH_BRACKETS if listed is None else listed[0]
    with ape.reverts(reason):
        env.config.add_market(env.oracles[0].address, mp(**bad), brackets, sender=deployer)
    assert env.engine.n_markets() == 2
    env.config.add_market(env.oracles[0].address, mp(**ok), brackets, sender=deployer)
    assert env.engine.n_markets() == 3
    assert params_of(env, 2) == mp(**ok)
    assert table(env.config.brackets(2)) == brackets


def test_set_market_params__min_notional_floor__bound_passes_one_wei_below_reverts(env, deployer):
    # a 1 USD floor only pays a reward floor of 0.02 USD
    env.config.set_liquidation_params(lp_(min_keeper_reward=0), sender=deployer)
    with ape.reverts("config: min notional out of bounds"):
        env.config.set_market_params(0, mp(min_position_notional=MIN_POSITION_NOTIONAL - 1), sender=deployer)
    env.config.set_market_params(0, mp(min_position_notional=MIN_POSITION_NOTIONAL), sender=deployer)
    assert env.engine.market(0).params.min_position_notional == MIN_POSITION_NOTIONAL


def test_add_market__zero_oracle__reverts(env, deployer):
    with ape.reverts("config: zero address"):
        env.config.add_market(ZERO_ADDRESS, mp(), ETH_BRACKETS, sender=deployer)


def test_set_market_params__unknown_market__reverts(env, deployer):
    with ape.reverts("config: unknown market"):
        env.config.set_market_params(2, mp(), sender=deployer)
    with ape.reverts("config: unknown market"):
        env.config.set_brackets(2, ETH_BRACKETS, sender=deployer)
    with ape.reverts("engine: unknown market"):
        env.engine.market(2)


def test_trade__unknown_market__reverts(env, trader):
    env.fund(trader, 1_000)
    with ape.reverts("engine: unknown market"):
        env.engine.trade(2, WAD, 2**256 - 1, sender=trader)


def test_add_market__sixteen_markets_max__seventeenth_reverts(env, deployer):
    for _ in range(MAX_MARKETS - env.engine.n_markets()):
        add_market(env)
    assert env.engine.n_markets() == MAX_MARKETS
    with ape.reverts("config: too many markets"):
        env.config.add_market(env.oracles[0].address, mp(), ETH_BRACKETS, sender=deployer)
    assert env.engine.n_markets() == MAX_MARKETS
    # a liquidation-parameter change still checks every one of the 16 markets: the last one listed
    # pays 0.75 USD at the smallest position, like BTC-USD
    env.config.set_market_params(MAX_MARKETS - 1, mp(liq_penalty=15 * 10**15), sender=deployer)
    with ape.reverts("config: penalty below reward floor"):
        env.config.set_liquidation_params(lp_(min_keeper_reward=75 * 10**16 + REWARD_UNIT), sender=deployer)
    env.config.set_liquidation_params(lp_(min_keeper_reward=75 * 10**16), sender=deployer)


# --- bracket bounds (set_brackets on a listed market, and add_market) --------------------------------

# (name, params the market needs, passing table, failing table, reason)
LOW = dict(liq_penalty=MIN_MMF, min_position_notional=500 * WAD)  # pays 0.5 USD at 0.1%
HIGH = dict(imf=MAX_MMF)
BRACKET_BOUNDS = [
    ("empty", {}, ETH_BRACKETS, [], "brackets: empty"),
    ("last_cap", {}, [(10**6 * WAD, ETH_MMF), (MAX, ETH_MMF)], [(10**6 * WAD, ETH_MMF)], "brackets: last cap"),
    ("caps_rise", {}, [(10**6 * WAD, ETH_MMF), (10**6 * WAD + 1, ETH_MMF), (MAX, ETH_MMF)],
     [(10**6 * WAD, ETH_MMF), (10**6 * WAD, ETH_MMF), (MAX, ETH_MMF)], "brackets: caps must rise"),
    ("mmf_falls", {}, [(10**6 * WAD, ETH_MMF), (MAX, ETH_MMF)], [(10**6 * WAD, ETH_MMF), (MAX, ETH_MMF - 1)],
     "brackets: mmf must not fall"),
    ("mmf_min", LOW, [(MAX, MIN_MMF)], [(MAX, MIN_MMF - 1)], "brackets: mmf out of bounds"),
    ("mmf_max", HIGH, [(10**6 * WAD, ETH_MMF), (MAX, MAX_MMF)], [(10**6 * WAD, ETH_MMF), (MAX, MAX_MMF + 1)],
     "brackets: mmf out of bounds"),
    ("cap_packing", {}, [(INF_CAP - 1, ETH_MMF), (MAX, ETH_MMF)], [(INF_CAP, ETH_MMF), (MAX, ETH_MMF)],
     "config: bracket cap too large"),
    ("eight_brackets", {}, [(i * 10**6 * WAD, ETH_MMF) for i in range(1, 8)] + [(MAX, ETH_MMF)],
     [(i * 10**6 * WAD, ETH_MMF + 1) for i in range(1, 8)] + [(MAX, ETH_MMF)], "brackets: mmf must not fall"),
    # the first fraction bounds imf and the penalty from above
    ("first_mmf_above_imf", {}, [(MAX, ETH_PARAMS["imf"])], [(MAX, ETH_PARAMS["imf"] + 1)], "config: imf out of bounds"),
    ("first_mmf_below_penalty", {}, [(MAX, ETH_PARAMS["liq_penalty"])], [(MAX, ETH_PARAMS["liq_penalty"] - 1)],
     "config: penalty out of bounds"),
]
BRACKET_IDS = [b[0] for b in BRACKET_BOUNDS]


@pytest.mark.parametrize("base, ok, bad, reason", [b[1:] for b in BRACKET_BOUNDS], ids=BRACKET_IDS)
def test_set_brackets__out_of_bounds__reverts_at_bound_passes(env, deployer, base, ok, bad, reason):
    m = add_market(env, mp(**base))
    old = table(env.config.brackets(m))
    with ape.reverts(reason):
        env.config.set_brackets(m, bad, sender=deployer)
    assert env.config.pending_brackets(m).eta == 0
    tx = env.config.set_brackets(m, ok, sender=deployer)
    if brackets_lower(old, ok):
        assert tx.return_value is True
        assert table(env.config.brackets(m)) == ok
    else:
        assert tx.return_value is False
        assert table(env.config.pending_brackets(m).brackets) == ok
        assert table(env.config.brackets(m)) == old


@pytest.mark.parametrize("base, ok, bad, reason", [b[1:] for b in BRACKET_BOUNDS], ids=BRACKET_IDS)
def test_add_market__bad_brackets__reverts_good_lists(env, deployer, base, ok, bad, reason):
    with ape.reverts(reason):
        env.config.add_market(env.oracles[0].address, mp(**base), bad, sender=deployer)
    assert env.engine.n_markets() == 2
    m = add_market(env, mp(**base), ok)
    assert m == 2
    assert table(env.config.brackets(m)) == ok


def test_brackets__packed_cap_at_limit__engine_uses_it(env, deployer):
    # a finite cap of 2**160 - 2 is stored as such: the whole market trades at the first fraction
    m = add_market(env, mp(), [(INF_CAP - 1, ETH_MMF), (MAX, 2 * ETH_MMF)])
    assert env.config.maintenance(m, 10**6 * WAD, 0) == 10**6 * WAD * ETH_MMF // WAD


# --- liquidation parameter bounds ------------------------------------------------------------------

# ETH-USD pays 0.02 * 50 = 1 USD and BTC-USD 0.015 * 50 = 0.75 USD: the reward floor may be 0.75 USD.
LIQ_BOUNDS = [
    ("target_min", dict(liq_target=MIN_LIQ_TARGET), dict(liq_target=MIN_LIQ_TARGET - 1), "config: target out of bounds"),
    ("target_max", dict(liq_target=MAX_LIQ_TARGET), dict(liq_target=MAX_LIQ_TARGET + 1), "config: target out of bounds"),
    ("keeper_share_max", dict(keeper_share=WAD), dict(keeper_share=WAD + 1), "config: keeper share out of bounds"),
    ("min_above_max", dict(min_keeper_reward=5 * 10**17, max_keeper_reward=5 * 10**17),
     dict(min_keeper_reward=5 * 10**17 + REWARD_UNIT, max_keeper_reward=5 * 10**17), "config: reward out of bounds"),
    ("max_reward_cap", dict(max_keeper_reward=MAX_KEEPER_REWARD), dict(max_keeper_reward=MAX_KEEPER_REWARD + REWARD_UNIT),
     "config: reward out of bounds"),
    ("min_granularity", dict(min_keeper_reward=5 * 10**17 + REWARD_UNIT), dict(min_keeper_reward=5 * 10**17 + 1),
     "config: reward granularity"),
    ("max_granularity", dict(max_keeper_reward=500 * WAD - REWARD_UNIT), dict(max_keeper_reward=500 * WAD - 1),
     "config: reward granularity"),
    ("reward_floor", dict(min_keeper_reward=75 * 10**16), dict(min_keeper_reward=75 * 10**16 + REWARD_UNIT),
     "config: penalty below reward floor"),
]


@pytest.mark.parametrize("ok, bad, reason", [b[1:] for b in LIQ_BOUNDS], ids=[b[0] for b in LIQ_BOUNDS])
def test_set_liquidation_params__one_past_bound__reverts(env, deployer, ok, bad, reason):
    with ape.reverts(reason):
        env.config.set_liquidation_params(lp_(**bad), sender=deployer)
    assert as_tuple(env.config.liquidation_params(), LIQ_FIELDS) == lp_()
    env.config.set_liquidation_params(lp_(**ok), sender=deployer)
    assert as_tuple(env.config.liquidation_params(), LIQ_FIELDS) == lp_(**ok)


def test_set_liquidation_params__reward_floor_applies_to_later_params(env, deployer):
    # with the floor at 0.75 USD, ETH-USD may not drop its smallest position's penalty below it
    env.config.set_liquidation_params(lp_(min_keeper_reward=75 * 10**16), sender=deployer)
    with ape.reverts("config: penalty below reward floor"):
        env.config.set_market_params(0, mp(min_position_notional=375 * 10**17 - 1), sender=deployer)
    env.config.set_market_params(0, mp(min_position_notional=375 * 10**17), sender=deployer)
    assert env.engine.market(0).params.min_position_notional == 375 * 10**17


# --- exposure bounds ---------------------------------------------------------------------------------

EXPOSURE_BOUNDS = [
    ("usage_zero", (1, 0), (0, 0), "config: pool usage out of bounds"),
    ("usage_max", (MAX_POOL_USAGE, 0), (MAX_POOL_USAGE + 1, 0), "config: pool usage out of bounds"),
    ("reserve_max", (WAD, MAX_RESERVE_FACTOR), (WAD, MAX_RESERVE_FACTOR + 1), "config: reserve out of bounds"),
]


@pytest.mark.parametrize("ok, bad, reason", [b[1:] for b in EXPOSURE_BOUNDS], ids=[b[0] for b in EXPOSURE_BOUNDS])
def test_set_exposure__one_wei_past_bound__reverts(env, deployer, ok, bad, reason):
    with ape.reverts(reason):
        env.config.set_exposure(*bad, sender=deployer)
    env.config.set_exposure(*ok, sender=deployer)
    assert (env.engine.max_pool_usage(), env.engine.reserve_factor()) == ok


# --- risk delay bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ok, bad", [(MIN_RISK_DELAY, MIN_RISK_DELAY - 1), (MAX_RISK_DELAY, MAX_RISK_DELAY + 1)],
                         ids=["min", "max"])
def test_set_risk_delay__one_past_bound__reverts(env, deployer, ok, bad):
    with ape.reverts("config: delay out of bounds"):
        env.config.set_risk_delay(bad, sender=deployer)
    tx = env.config.set_risk_delay(ok, sender=deployer)
    assert [e.delay for e in tx.decode_logs(env.config.RiskDelaySet)] == [ok]
    assert env.config.risk_delay() == ok


# --- events ---------------------------------------------------------------------------------------------


def test_add_market__emits_market_added_params_and_brackets(env, deployer):
    oracle = env.oracles[1].address
    params = mp(imf=12 * 10**16, taker_fee=10**15, z=2 * WAD, max_funding_rate=10**16)
    brackets = [(10**5 * WAD, 6 * 10**16), (MAX, 8 * 10**16)]
    tx = env.config.add_market(oracle, params, brackets, sender=deployer)
    assert tx.return_value == 2
    assert [(e.market_id, e.oracle) for e in tx.decode_logs(env.config.MarketAdded)] == [(2, oracle)]
    set_ = tx.decode_logs(env.config.MarketParamsSet)
    assert [(e.market_id, as_tuple(e.params, FIELDS)) for e in set_] == [(2, params)]
    br = tx.decode_logs(env.config.BracketsSet)
    assert [(e.market_id, table(e.brackets)) for e in br] == [(2, brackets)]
    m = env.engine.market(2)
    assert m.oracle == oracle
    assert as_tuple(m.params, FIELDS) == params
    assert (m.oi_long, m.oi_short) == (0, 0)
    assert env.engine.n_markets() == 3
    assert table(env.config.brackets(2)) == brackets


def test_set_market_params__emits_market_params_set(env, deployer):
    params = mp(taker_fee=10**14, max_oi_long=1_000 * WAD)
    tx = env.config.set_market_params(0, params, sender=deployer)
    logs = tx.decode_logs(env.config.MarketParamsSet)
    assert [(e.market_id, as_tuple(e.params, FIELDS)) for e in logs] == [(0, params)]
    assert params_of(env, 0) == params
    assert tx.decode_logs(env.config.RiskChangeQueued) == []


def test_set_liquidation_params__emits_liquidation_and_exposure(env, deployer):
    params = lp_(liq_target=2 * WAD, keeper_share=5 * 10**17, min_keeper_reward=WAD // 4, max_keeper_reward=1_000 * WAD)
    tx = env.config.set_liquidation_params(params, sender=deployer)
    logs = tx.decode_logs(env.config.LiquidationParamsSet)
    assert [as_tuple(e.params, LIQ_FIELDS) for e in logs] == [params]
    assert as_tuple(env.config.liquidation_params(), LIQ_FIELDS) == params
    # the exposure is written again unchanged
    assert [(e.max_pool_usage, e.reserve_factor) for e in tx.decode_logs(env.config.ExposureParamsSet)] == [
        (WAD, 25 * 10**16)
    ]


def test_set_exposure__emits_exposure_params_set(env, deployer):
    tx = env.config.set_exposure(2 * WAD, 5 * 10**17, sender=deployer)
    logs = tx.decode_logs(env.config.ExposureParamsSet)
    assert [(e.max_pool_usage, e.reserve_factor) for e in logs] == [(2 * WAD, 5 * 10**17)]
    assert [as_tuple(e.params, LIQ_FIELDS) for e in tx.decode_logs(env.config.LiquidationParamsSet)] == [lp_()]
    assert env.engine.max_pool_usage() == 2 * WAD
    assert env.engine.reserve_factor() == 5 * 10**17


def test_set_guardian__emits_guardian_set(env, deployer, guardian):
    tx = env.config.set_guardian(guardian.address, sender=deployer)
    assert [e.guardian for e in tx.decode_logs(env.config.GuardianSet)] == [guardian.address]
    assert env.config.guardian() == guardian.address
    tx = env.config.set_guardian(ZERO_ADDRESS, sender=deployer)
    assert [e.guardian for e in tx.decode_logs(env.config.GuardianSet)] == [ZERO_ADDRESS]
    assert env.config.guardian() == ZERO_ADDRESS


# --- two-step ownership ------------------------------------------------------------------------------


def test_ownership__two_step_transfer__new_owner_gets_rights_old_owner_loses_them(env, deployer, guardian):
    assert env.config.owner() == deployer.address
    env.config.transfer_ownership(guardian.address, sender=deployer)
    # nothing changes before the new owner accepts
    assert env.config.owner() == deployer.address
    assert env.config.pending_owner() == guardian.address
    env.config.set_exposure(2 * WAD, 0, sender=deployer)
    with ape.reverts(NOT_OWNER):
        env.config.set_exposure(3 * WAD, 0, sender=guardian)

    env.config.accept_ownership(sender=guardian)
    assert env.config.owner() == guardian.address
    assert env.config.pending_owner() == ZERO_ADDRESS
    with ape.reverts(NOT_OWNER):
        env.config.set_exposure(WAD, 0, sender=deployer)
    with ape.reverts(NOT_OWNER):
        env.config.set_guardian(deployer.address, sender=deployer)
    env.config.set_exposure(3 * WAD, 0, sender=guardian)
    assert env.engine.max_pool_usage() == 3 * WAD


def test_ownership__third_party_cannot_accept(env, deployer, guardian, trader):
    env.config.transfer_ownership(guardian.address, sender=deployer)
    with ape.reverts("ownable_2step: caller is not the new owner"):
        env.config.accept_ownership(sender=trader)
    assert env.config.owner() == deployer.address
    assert env.config.pending_owner() == guardian.address


def test_ownership__transfer_by_non_owner__reverts(env, trader):
    with ape.reverts(NOT_OWNER):
        env.config.transfer_ownership(trader.address, sender=trader)
    assert env.config.pending_owner() == ZERO_ADDRESS


# --- guardian pause switch ----------------------------------------------------------------------------


def test_set_paused_open__guardian__pauses_and_unpauses(env, deployer, guardian):
    env.config.set_guardian(guardian.address, sender=deployer)
    tx = env.config.set_paused_open(True, sender=guardian)
    assert [(e.paused, e.by) for e in tx.decode_logs(env.config.PausedOpenSet)] == [(True, guardian.address)]
    assert env.engine.paused_open() is True
    tx = env.config.set_paused_open(False, sender=guardian)
    assert [(e.paused, e.by) for e in tx.decode_logs(env.config.PausedOpenSet)] == [(False, guardian.address)]
    assert env.engine.paused_open() is False


def test_set_paused_open__owner__pauses(env, deployer, guardian):
    env.config.set_guardian(guardian.address, sender=deployer)
    tx = env.config.set_paused_open(True, sender=deployer)
    assert [(e.paused, e.by) for e in tx.decode_logs(env.config.PausedOpenSet)] == [(True, deployer.address)]
    assert env.engine.paused_open() is True


def test_set_paused_open__other__reverts(env, deployer, guardian, trader):
    env.config.set_guardian(guardian.address, sender=deployer)
    with ape.reverts(NOT_GUARDIAN):
        env.config.set_paused_open(True, sender=trader)
    assert env.engine.paused_open() is False


def test_set_paused_open__former_guardian__reverts(env, deployer, guardian, trader):
    env.config.set_guardian(guardian.address, sender=deployer)
    env.config.set_guardian(trader.address, sender=deployer)
    with ape.reverts(NOT_GUARDIAN):
        env.config.set_paused_open(True, sender=guardian)
    env.config.set_paused_open(True, sender=trader)
    assert env.engine.paused_open() is True


# --- the risk timelock: market parameters -------------------------------------------------------------

LOWER_ALL = mp(
    imf=9 * 10**16, im_multiplier=12 * 10**17, liq_penalty=10**16, taker_fee=4 * 10**14, max_funding_rate=0, z=0,
    horizon=1800, skew_scale=2_000_000 * WAD, max_oi_long=10 * WAD, min_position_notional=60 * WAD,
)


def test_set_market_params__lowers_every_risk_field__applies_in_the_same_tx(env, deployer):
    tx = env.config.set_market_params(0, LOWER_ALL, sender=deployer)
    assert tx.return_value is True
    assert params_of(env, 0) == LOWER_ALL
    assert tx.decode_logs(env.config.RiskChangeQueued) == []
    assert [e.market_id for e in tx.decode_logs(env.config.MarketParamsSet)] == [0]
    assert env.config.pending_params(0).eta == 0


# one risk field raised (or tau changed), all else as in force
RAISES = [
    ("imf", dict(imf=11 * 10**16)),
    ("im_multiplier", dict(im_multiplier=16 * 10**17)),
    ("liq_penalty", dict(liq_penalty=3 * 10**16)),
    ("taker_fee", dict(taker_fee=6 * 10**14)),
    ("max_funding_rate", dict(max_funding_rate=1)),
    ("z", dict(z=1)),
    ("horizon", dict(horizon=3601)),
    ("tau_up", dict(tau=14401)),
    ("tau_down", dict(tau=14399)),
    # a rise is queued even when other risk fields fall in the same change
    ("imf_up_fee_down", dict(imf=11 * 10**16, taker_fee=0)),
]


@pytest.mark.parametrize("overrides", [r[1] for r in RAISES], ids=[r[0] for r in RAISES])
def test_set_market_params__raises_a_risk_field__queued_engine_unchanged(env, chain, deployer, overrides):
    new = mp(**overrides)
    tx = env.config.set_market_params(0, new, sender=deployer)
    assert tx.return_value is False
    eta = ts(chain, tx) + DELAY
    assert queued_log(tx, env) == [(0, PARAMS, eta)]
    assert tx.decode_logs(env.config.MarketParamsSet) == []
    assert params_of(env, 0) == mp()
    pending = env.config.pending_params(0)
    assert (as_tuple(pending.params, FIELDS), pending.eta) == (new, eta)


def test_apply_market_params__one_second_early_reverts__at_eta_anyone_applies(env, chain, deployer, trader2):
    new = mp(imf=2 * 10**17, z=WAD)
    tx = env.config.set_market_params(0, new, sender=deployer)
    eta = env.config.pending_params(0).eta
    assert eta == ts(chain, tx) + DELAY
    chain.pending_timestamp = eta - 10
    refresh_prices(env)  # the oracle's heartbeat is shorter than the delay
    chain.pending_timestamp = eta - 1
    with ape.reverts("config: too early"):
        env.config.apply_market_params(0, sender=trader2)
    assert params_of(env, 0) == mp()
    chain.pending_timestamp = eta
    tx = env.config.apply_market_params(0, sender=trader2)
    assert ts(chain, tx) == eta
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeApplied)] == [(0, PARAMS)]
    assert [(e.market_id, as_tuple(e.params, FIELDS)) for e in tx.decode_logs(env.config.MarketParamsSet)] == [(0, new)]
    assert params_of(env, 0) == new
    assert env.config.pending_params(0).eta == 0
    with ape.reverts("config: nothing queued"):
        env.config.apply_market_params(0, sender=trader2)


def test_apply__nothing_queued__reverts(env, trader):
    with ape.reverts("config: nothing queued"):
        env.config.apply_market_params(0, sender=trader)
    with ape.reverts("config: nothing queued"):
        env.config.apply_brackets(1, sender=trader)


def test_set_risk_delay__later_queue_uses_new_delay_earlier_keeps_its_eta(env, chain, deployer):
    env.config.set_market_params(0, mp(imf=11 * 10**16), sender=deployer)
    eta0 = env.config.pending_params(0).eta
    env.config.set_risk_delay(MIN_RISK_DELAY, sender=deployer)
    tx = env.config.set_market_params(1, mp(imf=11 * 10**16), sender=deployer)
    assert env.config.pending_params(1).eta == ts(chain, tx) + MIN_RISK_DELAY
    assert env.config.pending_params(0).eta == eta0


@pytest.mark.parametrize("who", ["deployer", "guardian"])
def test_cancel__owner_or_guardian__drops_queued_change(env, deployer, guardian, trader, who):
    env.config.set_guardian(guardian.address, sender=deployer)
    env.config.set_market_params(0, mp(imf=11 * 10**16), sender=deployer)
    env.config.set_brackets(0, [(MAX, 6 * 10**16)], sender=deployer)
    with ape.reverts(NOT_GUARDIAN):
        env.config.cancel(0, PARAMS, sender=trader)
    sender = {"deployer": deployer, "guardian": guardian}[who]
    with ape.reverts("config: unknown kind"):
        env.config.cancel(0, 2, sender=sender)
    tx = env.config.cancel(0, PARAMS, sender=sender)
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeCancelled)] == [(0, PARAMS)]
    assert env.config.pending_params(0).eta == 0
    assert env.config.pending_brackets(0).eta != 0  # the other kind stays
    tx = env.config.cancel(0, BRACKETS, sender=sender)
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeCancelled)] == [(0, BRACKETS)]
    assert env.config.pending_brackets(0).eta == 0
    with ape.reverts("config: nothing queued"):
        env.config.cancel(0, PARAMS, sender=sender)
    with ape.reverts("config: nothing queued"):
        env.config.apply_market_params(0, sender=trader)
    assert params_of(env, 0) == mp()


def test_set_market_params__replaces_queued_change(env, chain, deployer):
    env.config.set_market_params(0, mp(imf=11 * 10**16), sender=deployer)
    chain.pending_timestamp = chain.pending_timestamp + 100
    tx = env.config.set_market_params(0, mp(imf=12 * 10**16), sender=deployer)
    assert tx.return_value is False
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeCancelled)] == [(0, PARAMS)]
    eta = ts(chain, tx) + DELAY
    assert queued_log(tx, env) == [(0, PARAMS, eta)]
    pending = env.config.pending_params(0)
    assert (as_tuple(pending.params, FIELDS), pending.eta) == (mp(imf=12 * 10**16), eta)


def test_set_market_params__lowering_cancels_queued_raise(env, deployer):
    env.config.set_market_params(0, mp(imf=11 * 10**16), sender=deployer)
    tx = env.config.set_market_params(0, LOWER_ALL, sender=deployer)
    assert tx.return_value is True
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeCancelled)] == [(0, PARAMS)]
    assert env.config.pending_params(0).eta == 0
    assert params_of(env, 0) == LOWER_ALL


def test_apply_market_params__rechecked_against_brackets_of_now(env, chain, deployer, trader):
    # queued: penalty 5% (allowed by the 5% bracket); then the bracket falls to 4%
    env.config.set_market_params(0, mp(liq_penalty=ETH_MMF), sender=deployer)
    eta = env.config.pending_params(0).eta
    assert env.config.set_brackets(0, [(MAX, 4 * 10**16)], sender=deployer).return_value is True
    chain.pending_timestamp = eta - 10
    refresh_prices(env)
    chain.pending_timestamp = eta
    with ape.reverts("config: penalty out of bounds"):
        env.config.apply_market_params(0, sender=trader)
    assert params_of(env, 0) == mp()


# --- the risk timelock: brackets ----------------------------------------------------------------------

BRACKETS_LOWER = [
    ("flat_lower", [(MAX, 4 * 10**16)]),
    ("split_lower_above_cap", [(10**6 * WAD, ETH_MMF), (MAX, ETH_MMF)]),
    ("split_lower_first", [(10**5 * WAD, 3 * 10**16), (MAX, ETH_MMF)]),
    ("same", ETH_BRACKETS),
]


@pytest.mark.parametrize("new", [b[1] for b in BRACKETS_LOWER], ids=[b[0] for b in BRACKETS_LOWER])
def test_set_brackets__no_marginal_fraction_rises__applies_at_once(env, deployer, new):
    tx = env.config.set_brackets(0, new, sender=deployer)
    assert tx.return_value is True
    assert [(e.market_id, table(e.brackets)) for e in tx.decode_logs(env.config.BracketsSet)] == [(0, new)]
    assert tx.decode_logs(env.config.RiskChangeQueued) == []
    assert table(env.config.brackets(0)) == new
    n = 2 * 10**6 * WAD
    assert env.config.maintenance(0, n, 0) == maintenance(new, n)


def test_set_brackets__lowering_split__engine_requirement_follows_at_once(env, deployer, trader):
    # 4 ETH at 2,000 = 8,000 USD: 5,000 at 3% + 3,000 at 5% = 300 USD instead of 400
    env.fund(trader, 1_000)
    env.trade(trader, 0, 4)
    assert env.engine.health(trader.address).maintenance_req == 400 * WAD
    split = [(5_000 * WAD, 3 * 10**16), (MAX, ETH_MMF)]
    assert env.config.set_brackets(0, split, sender=deployer).return_value is True
    assert env.engine.health(trader.address).maintenance_req == maintenance(split, 8_000 * WAD) == 300 * WAD


# (name, table in force, new table): some marginal fraction rises somewhere
BRACKETS_RAISE = [
    ("flat_higher", ETH_BRACKETS, [(MAX, ETH_MMF + 1)]),
    ("higher_last", [(10**6 * WAD, ETH_MMF), (MAX, 6 * 10**16)], [(10**6 * WAD, ETH_MMF), (MAX, 6 * 10**16 + 1)]),
    ("cap_moved_down", [(10**6 * WAD, ETH_MMF), (MAX, 6 * 10**16)], [(10**6 * WAD - 1, ETH_MMF), (MAX, 6 * 10**16)]),
    ("lower_first_higher_above", ETH_BRACKETS, [(10**6 * WAD, 4 * 10**16), (MAX, 6 * 10**16)]),
    ("middle_bracket_higher", [(10**6 * WAD, ETH_MMF), (2 * 10**6 * WAD, 6 * 10**16), (MAX, 8 * 10**16)],
     [(10**6 * WAD, ETH_MMF), (2 * 10**6 * WAD, 6 * 10**16 + 1), (MAX, 8 * 10**16)]),
    ("new_cap_inside_old_bracket", [(10**6 * WAD, ETH_MMF), (MAX, 8 * 10**16)],
     [(5 * 10**5 * WAD, ETH_MMF), (10**6 * WAD, 6 * 10**16), (MAX, 8 * 10**16)]),
]


@pytest.mark.parametrize("old, new", [b[1:] for b in BRACKETS_RAISE], ids=[b[0] for b in BRACKETS_RAISE])
def test_set_brackets__a_marginal_fraction_rises__queued(env, chain, deployer, old, new):
    m = add_market(env, mp(), old)
    tx = env.config.set_brackets(m, new, sender=deployer)
    assert tx.return_value is False
    eta = ts(chain, tx) + DELAY
    assert queued_log(tx, env) == [(m, BRACKETS, eta)]
    assert tx.decode_logs(env.config.BracketsSet) == []
    assert table(env.config.brackets(m)) == old
    pending = env.config.pending_brackets(m)
    assert (table(pending.brackets), pending.eta) == (new, eta)


def test_apply_brackets__early_reverts__at_eta_applies__replaced_first(env, chain, deployer, trader2):
    env.config.set_brackets(0, [(MAX, 6 * 10**16)], sender=deployer)
    chain.pending_timestamp = chain.pending_timestamp + 50
    tx = env.config.set_brackets(0, [(MAX, 7 * 10**16)], sender=deployer)
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeCancelled)] == [(0, BRACKETS)]
    eta = ts(chain, tx) + DELAY
    assert queued_log(tx, env) == [(0, BRACKETS, eta)]
    chain.pending_timestamp = eta - 1
    with ape.reverts("config: too early"):
        env.config.apply_brackets(0, sender=trader2)
    chain.pending_timestamp = eta
    tx = env.config.apply_brackets(0, sender=trader2)
    assert [(e.market_id, e.kind) for e in tx.decode_logs(env.config.RiskChangeApplied)] == [(0, BRACKETS)]
    assert [(e.market_id, table(e.brackets)) for e in tx.decode_logs(env.config.BracketsSet)] == [
        (0, [(MAX, 7 * 10**16)])
    ]
    assert table(env.config.brackets(0)) == [(MAX, 7 * 10**16)]
    assert env.config.maintenance(0, 1000 * WAD, 0) == 70 * WAD
    assert env.config.pending_brackets(0).eta == 0


# --- a queued increase never catches a healthy account before it applies -------------------------------

RAISED = [(MAX, 2 * ETH_MMF)]  # 5% -> 10%: within imf, makes the account below liquidatable


def _near_maintenance(env, trader):
    """A long of 4 ETH on 1,000 USD, the price down to 1,900: healthy at 5%, liquidatable at 10%."""
    env.fund(trader, 1_000)
    env.trade(trader, 0, 4)
    env.set_price(0, 1_900)
    h = env.engine.health(trader.address)
    assert not h.liquidatable
    assert h.maintenance_req < h.equity < 2 * h.maintenance_req
    return h


def _at(chain, env, t):
    """Makes the next block's time t after a fresh price round a few seconds before."""
    chain.pending_timestamp = t - 5
    refresh_prices(env, (1_900, 60_000))
    chain.pending_timestamp = t


def test_queued_bracket_raise__healthy_account_stays_healthy_until_applied(env, chain, deployer, trader, liquidator):
    _near_maintenance(env, trader)
    tx = env.config.set_brackets(0, RAISED, sender=deployer)
    assert tx.return_value is False
    eta = ts(chain, tx) + DELAY
    _at(chain, env, eta - 1)
    assert not env.engine.health(trader.address).liquidatable
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(trader.address, sender=liquidator)
    chain.pending_timestamp = eta - 1  # the clock may have moved on with the blocks above
    with ape.reverts("config: too early"):
        env.config.apply_brackets(0, sender=liquidator)
    assert not env.engine.health(trader.address).liquidatable
    chain.pending_timestamp = eta
    env.config.apply_brackets(0, sender=liquidator)
    assert env.engine.health(trader.address).liquidatable
    env.engine.liquidate(trader.address, sender=liquidator)
    assert not env.engine.health(trader.address).liquidatable


def test_queued_imf_and_bracket_raise__front_run_by_reducing(env, chain, deployer, trader, liquidator):
    _near_maintenance(env, trader)
    env.config.set_market_params(0, mp(imf=2 * 10**17), sender=deployer)
    env.config.set_brackets(0, RAISED, sender=deployer)
    eta = max(env.config.pending_params(0).eta, env.config.pending_brackets(0).eta)
    _at(chain, env, eta - 1)
    env.trade(trader, 0, -2)  # the trader saw the queued change and halves the position
    assert env.engine.position(trader.address, 0).size == 2 * WAD
    chain.pending_timestamp = eta
    env.config.apply_market_params(0, sender=liquidator)
    env.config.apply_brackets(0, sender=liquidator)
    assert params_of(env, 0) == mp(imf=2 * 10**17)
    h = env.engine.health(trader.address)
    assert not h.liquidatable
    assert h.maintenance_req == 2 * 1_900 * WAD * 2 * ETH_MMF // WAD
    with ape.reverts("engine: not liquidatable"):
        env.engine.liquidate(trader.address, sender=liquidator)


def test_queued_raise__account_that_waits__liquidatable_after_apply(env, chain, deployer, trader, liquidator):
    # the same account without the reduction: the apply itself is what makes it liquidatable
    _near_maintenance(env, trader)
    env.config.set_brackets(0, RAISED, sender=deployer)
    eta = env.config.pending_brackets(0).eta
    _at(chain, env, eta)
    assert not env.engine.health(trader.address).liquidatable
    env.config.apply_brackets(0, sender=liquidator)
    assert env.engine.health(trader.address).liquidatable


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
    assert cfg.markets[0].params() == mp(max_funding_rate=5 * 10**16, z=3 * WAD)
    assert cfg.markets[0].brackets_param() == [(250_000 * WAD, ETH_MMF), (10**6 * WAD, 75 * 10**15), (MAX, 10**17)]
    assert cfg.liquidation.params() == lp_()
    assert cfg.risk_delay == DELAY


def test_load_config__mmf_shorthand__one_unbounded_bracket(tmp_path):
    raw = _raw()
    raw["markets"][0].pop("brackets")
    raw["markets"][0]["mmf"] = 0.06
    cfg = load_config(_write(tmp_path, raw))
    assert cfg.markets[0].brackets_param() == [(MAX, 6 * 10**16)]


def _eth(**fields):
    def brk(raw):
        raw["markets"][0].update(fields)
    return brk


def _eth_brackets(*rows):
    return _eth(brackets=[dict(r) for r in rows])


CONFIG_BREAKS = [
    ("penalty_floor", _eth(min_position_notional=24), "liquidating yourself would pay"),  # 0.02 * 24 < 0.5
    ("penalty_above_mmf", _eth(liq_penalty=0.06), "ETH-USD: liq_penalty 0.06 must be within [0, min(mmf"),
    ("imf_below_mmf", _eth(imf=0.04), "ETH-USD: imf 0.04 must be within [mmf"),
    ("oi_cap", lambda raw: raw["markets"][1].update(max_oi_short=50001), "BTC-USD: open interest caps may not exceed"),
    ("unknown_field", _eth(max_leverage=20), "max_leverage"),
    ("mmf_and_brackets", _eth(mmf=0.05), "ETH-USD: give either mmf or brackets"),
    ("no_brackets", _eth_brackets(), "ETH-USD: 1 to 8 brackets"),
    ("nine_brackets", _eth_brackets(*[{"cap": 1000 * (i + 1), "mmf": 0.05} for i in range(8)], {"mmf": 0.05}),
     "ETH-USD: 1 to 8 brackets"),
    ("caps_fall", _eth_brackets({"cap": 1000, "mmf": 0.05}, {"cap": 1000, "mmf": 0.06}, {"mmf": 0.07}),
     "ETH-USD: bracket caps must rise"),
    ("last_has_cap", _eth_brackets({"cap": 1000, "mmf": 0.05}, {"cap": 2000, "mmf": 0.06}),
     "every bracket but the last needs a cap"),
    ("middle_without_cap", _eth_brackets({"cap": 1000, "mmf": 0.05}, {"mmf": 0.06}, {"mmf": 0.07}),
     "every bracket but the last needs a cap"),
    ("mmf_falls", _eth_brackets({"cap": 1000, "mmf": 0.06}, {"mmf": 0.05}), "ETH-USD: bracket mmf must not fall"),
    ("mmf_below_min", _eth_brackets({"mmf": 0.0009}), "ETH-USD: mmf 0.0009 outside"),
    ("mmf_above_max", _eth_brackets({"cap": 1000, "mmf": 0.05}, {"mmf": 0.51}), "ETH-USD: mmf 0.51 outside"),
    ("funding_max", _eth(max_funding_rate=0.11), "ETH-USD: max_funding_rate outside"),
    ("z_max", _eth(z=10.5), "ETH-USD: volatility parameters out of bounds"),
    ("horizon_max", _eth(horizon=MAX_HORIZON + 1), "ETH-USD: volatility parameters out of bounds"),
    ("tau_min", _eth(tau=MIN_TAU - 1), "ETH-USD: volatility parameters out of bounds"),
    ("tau_max", _eth(tau=MAX_TAU + 1), "ETH-USD: volatility parameters out of bounds"),
    ("risk_delay_min", lambda raw: raw.update(risk_delay=MIN_RISK_DELAY - 1), "risk_delay outside"),
    ("risk_delay_max", lambda raw: raw.update(risk_delay=MAX_RISK_DELAY + 1), "risk_delay outside"),
]


@pytest.mark.parametrize("brk, message", [c[1:] for c in CONFIG_BREAKS], ids=[c[0] for c in CONFIG_BREAKS])
def test_load_config__broken_constraint__raises_config_error(tmp_path, brk, message):
    raw = _raw()
    brk(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(ConfigError) as info:
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


SETTLES = [
    ("risk_delay_bounds", lambda raw: raw.update(risk_delay=MIN_RISK_DELAY)),
    ("risk_delay_max", lambda raw: raw.update(risk_delay=MAX_RISK_DELAY)),
    ("volatility_bounds", _eth(z=10, horizon=MAX_HORIZON, tau=MAX_TAU, max_funding_rate=0.1)),
    ("tau_min", _eth(tau=MIN_TAU)),
    ("eight_brackets", _eth_brackets(*[{"cap": 1000 * (i + 1), "mmf": 0.05} for i in range(7)], {"mmf": 0.05})),
]


@pytest.mark.parametrize("fix", [s[1] for s in SETTLES], ids=[s[0] for s in SETTLES])
def test_load_config__at_bound__accepted(tmp_path, fix):
    raw = _raw()
    fix(raw)
    cfg = load_config(_write(tmp_path, raw))
    assert cfg.risk_delay == raw.get("risk_delay", DELAY)
    assert len(cfg.markets[0].brackets_param()) == len(raw["markets"][0]["brackets"])


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
