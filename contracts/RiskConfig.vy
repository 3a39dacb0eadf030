# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Ballast RiskConfig
@notice Owns Ballast's governance: two-step ownership, the guardian, the hard bounds of every
        parameter, and the risk timelock. It is the only writer of the MarginEngine's parameters.
@dev A change that raises what traders must hold or pay (brackets, imf, im_multiplier, z,
     horizon, liq_penalty, taker_fee, max_funding_rate, or any change of tau) is queued and takes
     effect `risk_delay` seconds later, applied by anyone; a change that lowers them applies at
     once. The volatility term reacts to a crash without governance. Listing a market, the
     liquidation and exposure parameters and the pause apply at once, within their bounds.
@custom:kill The guardian (or the owner) may set the engine's `paused_open`, which blocks opening
             and increasing positions and LP deposits, and nothing else. The guardian may also
             cancel a queued risk change.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from interfaces import IMarginEngine
from modules import brackets as br

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


# CONSTANTS #

WAD: constant(uint256) = 10**18
MAX_MARKETS: constant(uint256) = 16
MAX_BRACKETS: constant(uint256) = br.MAX_BRACKETS
INF_CAP: constant(uint256) = 2**160 - 1
PARAMS: constant(uint256) = 0
BRACKETS: constant(uint256) = 1

# Hard bounds of every parameter; no governance call can leave them.
MIN_MMF: constant(uint256) = 10**15  # 0.1%
MAX_MMF: constant(uint256) = 5 * 10**17  # 50%
MAX_IMF: constant(uint256) = 10**18  # 100%
MAX_IM_MULTIPLIER: constant(uint256) = 10 * 10**18
MAX_LIQ_PENALTY: constant(uint256) = 10**17  # 10%
MAX_TAKER_FEE: constant(uint256) = 10**16  # 1%
MIN_SKEW_SCALE: constant(uint256) = 10**18  # one whole base unit
MAX_SKEW_SCALE: constant(uint256) = 10**36
MIN_POSITION_NOTIONAL: constant(uint256) = 10**18  # 1 USD
MAX_POSITION_NOTIONAL_FLOOR: constant(uint256) = 10**24  # 1,000,000 USD
MAX_FUNDING_RATE: constant(uint256) = 10**17  # 10% per day at full skew
MAX_Z: constant(uint256) = 10 * 10**18
MAX_HORIZON: constant(uint256) = 7 * 86400
MIN_TAU: constant(uint256) = 60
MAX_TAU: constant(uint256) = 30 * 86400
MIN_LIQ_TARGET: constant(uint256) = 10**18
MAX_LIQ_TARGET: constant(uint256) = 3 * 10**18
MAX_KEEPER_REWARD: constant(uint256) = 10**22  # 10,000 USD
MAX_POOL_USAGE: constant(uint256) = 10 * 10**18
MAX_RESERVE_FACTOR: constant(uint256) = 10**18
MIN_RISK_DELAY: constant(uint256) = 3600
MAX_RISK_DELAY: constant(uint256) = 30 * 86400


# STRUCTS #


struct PendingParams:
    params: IMarginEngine.MarketParams
    eta: uint256  # 0: nothing queued


struct PendingBrackets:
    brackets: DynArray[br.Bracket, MAX_BRACKETS]
    eta: uint256  # 0: nothing queued


# EVENTS #


event EngineSet:
    engine: indexed(address)


event MarketAdded:
    market_id: indexed(uint256)
    oracle: address


event MarketParamsSet:
    market_id: indexed(uint256)
    params: IMarginEngine.MarketParams


event BracketsSet:
    market_id: indexed(uint256)
    brackets: DynArray[br.Bracket, MAX_BRACKETS]


event LiquidationParamsSet:
    params: IMarginEngine.LiquidationParams


event ExposureParamsSet:
    max_pool_usage: uint256
    reserve_factor: uint256


event GuardianSet:
    guardian: indexed(address)


event PausedOpenSet:
    paused: bool
    by: indexed(address)


event RiskDelaySet:
    delay: uint256


event RiskChangeQueued:
    market_id: indexed(uint256)
    kind: uint256  # 0: market parameters, 1: brackets
    eta: uint256  # earliest time it may be applied


event RiskChangeApplied:
    market_id: indexed(uint256)
    kind: uint256


event RiskChangeCancelled:
    market_id: indexed(uint256)
    kind: uint256


# STORAGE #

engine: public(IMarginEngine)
guardian: public(address)
# @dev Seconds between queueing a risk increase and its earliest application.
risk_delay: public(uint256)
_brackets: HashMap[uint256, DynArray[br.Bracket, MAX_BRACKETS]]
_pending_params: HashMap[uint256, PendingParams]
_pending_brackets: HashMap[uint256, PendingBrackets]
_liq: IMarginEngine.LiquidationParams


@deploy
def __init__(guardian_: address, risk_delay_: uint256):
    """
    @notice Deploys the configuration; the deployer becomes the owner.
    @param guardian_ The address that may pause opening and cancel queued changes.
    @param risk_delay_ Seconds a risk increase waits, within [1 hour, 30 days].
    """
    ownable.__init__()
    ownable_2step.__init__()
    self._set_risk_delay(risk_delay_)
    self.guardian = guardian_
    log GuardianSet(guardian=guardian_)


# SETUP #


@external
def set_engine(engine_: IMarginEngine, liq: IMarginEngine.LiquidationParams, max_pool_usage: uint256, reserve_factor: uint256):
    """
    @notice Names the engine, once, and writes its first liquidation and exposure parameters.
            Owner only; the engine must name this contract as its config.
    @param engine_ The MarginEngine.
    @param liq The liquidation parameters.
    @param max_pool_usage Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor Fraction of the skew notional held back from LP withdrawals.
    """
    ownable._check_owner()
    assert self.engine.address == empty(address), "config: engine already set"
    assert staticcall engine_.config() == self, "config: engine of another config"
    self.engine = engine_
    log EngineSet(engine=engine_.address)
    self._set_globals(liq, max_pool_usage, reserve_factor)


# GOVERNANCE #


@external
def add_market(oracle: address, params: IMarginEngine.MarketParams, brackets: DynArray[br.Bracket, MAX_BRACKETS]) -> uint256:
    """
    @notice Lists a market with its parameters and maintenance brackets, at once. Owner only.
    @param oracle The IOracle adapter of the market's feed.
    @param params Its parameters, within the hard bounds.
    @param brackets Its maintenance brackets.
    @return uint256 The new market id.
    """
    ownable._check_owner()
    assert oracle != empty(address), "config: zero address"
    market_id: uint256 = staticcall self._engine().n_markets()
    assert market_id < MAX_MARKETS, "config: too many markets"
    self._check_brackets(brackets)
    self._check_params(params, brackets[0].mmf, self._liq.min_keeper_reward)
    extcall self.engine.set_market(market_id, oracle, params, self._hot(params))
    log MarketAdded(market_id=market_id, oracle=oracle)
    log MarketParamsSet(market_id=market_id, params=params)
    self._write_brackets(market_id, brackets)
    return market_id


@external
def set_market_params(market_id: uint256, params: IMarginEngine.MarketParams) -> bool:
    """
    @notice Sets a market's parameters: at once when no risk field rises, else queued for
            `risk_delay` (replacing a change queued before). Owner only.
    @param market_id The market.
    @param params The new parameters, within the hard bounds.
    @return bool True when applied at once, False when queued.
    """
    ownable._check_owner()
    self._check_listed(market_id)
    self._check_params(params, self._brackets[market_id][0].mmf, self._liq.min_keeper_reward)
    self._cancel(market_id, PARAMS)
    if self._params_lower(self._params(market_id), params):
        self._write_params(market_id, params)
        return True
    eta: uint256 = block.timestamp + self.risk_delay
    self._pending_params[market_id] = PendingParams(params=params, eta=eta)
    log RiskChangeQueued(market_id=market_id, kind=PARAMS, eta=eta)
    return False


@external
def set_brackets(market_id: uint256, brackets: DynArray[br.Bracket, MAX_BRACKETS]) -> bool:
    """
    @notice Sets a market's maintenance brackets: at once when no marginal fraction rises at any
            notional, else queued for `risk_delay` (replacing a change queued before). Owner only.
    @param market_id The market.
    @param brackets The new brackets.
    @return bool True when applied at once, False when queued.
    """
    ownable._check_owner()
    self._check_listed(market_id)
    self._check_brackets(brackets)
    self._check_params(self._params(market_id), brackets[0].mmf, self._liq.min_keeper_reward)
    self._cancel(market_id, BRACKETS)
    if self._brackets_lower(self._brackets[market_id], brackets):
        self._write_brackets(market_id, brackets)
        return True
    eta: uint256 = block.timestamp + self.risk_delay
    self._pending_brackets[market_id] = PendingBrackets(brackets=brackets, eta=eta)
    log RiskChangeQueued(market_id=market_id, kind=BRACKETS, eta=eta)
    return False


@external
def apply_market_params(market_id: uint256):
    """
    @notice Applies a queued parameter change once its delay has passed. Anyone may.
    @dev Checked again against the bounds and the brackets and reward floor of now.
    @param market_id The market.
    """
    pending: PendingParams = self._pending_params[market_id]
    assert pending.eta != 0, "config: nothing queued"
    assert block.timestamp >= pending.eta, "config: too early"
    self._check_params(pending.params, self._brackets[market_id][0].mmf, self._liq.min_keeper_reward)
    self._pending_params[market_id] = empty(PendingParams)
    log RiskChangeApplied(market_id=market_id, kind=PARAMS)
    self._write_params(market_id, pending.params)


@external
def apply_brackets(market_id: uint256):
    """
    @notice Applies a queued bracket change once its delay has passed. Anyone may.
    @param market_id The market.
    """
    pending: PendingBrackets = self._pending_brackets[market_id]
    assert pending.eta != 0, "config: nothing queued"
    assert block.timestamp >= pending.eta, "config: too early"
    self._check_params(self._params(market_id), pending.brackets[0].mmf, self._liq.min_keeper_reward)
    self._pending_brackets[market_id] = empty(PendingBrackets)
    log RiskChangeApplied(market_id=market_id, kind=BRACKETS)
    self._write_brackets(market_id, pending.brackets)


@external
def cancel(market_id: uint256, kind: uint256):
    """
    @notice Cancels a queued change. Owner or guardian.
    @param market_id The market.
    @param kind 0: market parameters, 1: brackets.
    """
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "config: not guardian"
    assert kind <= BRACKETS, "config: unknown kind"
    assert self._cancel(market_id, kind), "config: nothing queued"


@external
def set_liquidation_params(liq: IMarginEngine.LiquidationParams):
    """
    @notice Sets the liquidation parameters, at once. Owner only; within the hard bounds.
    @param liq The new parameters.
    """
    ownable._check_owner()
    self._set_globals(liq, staticcall self._engine().max_pool_usage(), staticcall self._engine().reserve_factor())


@external
def set_exposure(max_pool_usage: uint256, reserve_factor: uint256):
    """
    @notice Sets how far a market's skew may use the pool and what the pool holds back.
            Owner only; within the hard bounds.
    @param max_pool_usage Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor Fraction of the skew notional held back from LP withdrawals.
    """
    ownable._check_owner()
    self._set_globals(self._liq, max_pool_usage, reserve_factor)


@external
def set_risk_delay(delay: uint256):
    """
    @notice Sets the delay of risk increases, within [1 hour, 30 days]. Owner only.
    @dev A change queued before keeps its time.
    @param delay Seconds.
    """
    ownable._check_owner()
    self._set_risk_delay(delay)


@external
def set_guardian(guardian_: address):
    """
    @notice Names the guardian. Owner only.
    @param guardian_ The new guardian (empty to have none).
    """
    ownable._check_owner()
    self.guardian = guardian_
    log GuardianSet(guardian=guardian_)


@external
def set_paused_open(paused: bool):
    """
    @notice Blocks or unblocks opening and increasing positions and LP deposits.
    @dev Guardian or owner. Nothing else can be paused.
    @param paused The new state.
    """
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "config: not guardian"
    extcall self._engine().set_paused_open(paused)
    log PausedOpenSet(paused=paused, by=msg.sender)


# VIEWS #


@external
@view
def brackets(market_id: uint256) -> DynArray[br.Bracket, MAX_BRACKETS]:
    """
    @notice A market's maintenance brackets in force, ascending; the last cap is max_value.
    @param market_id The market.
    @return DynArray[br.Bracket, MAX_BRACKETS] The brackets.
    """
    return self._brackets[market_id]


@external
@view
def liquidation_params() -> IMarginEngine.LiquidationParams:
    """
    @notice The liquidation parameters in force (the engine holds them packed).
    @return IMarginEngine.LiquidationParams The parameters.
    """
    return self._liq


@external
@view
def pending_params(market_id: uint256) -> PendingParams:
    """
    @notice A queued parameter change and its earliest time (eta 0: none).
    @param market_id The market.
    @return PendingParams The change.
    """
    return self._pending_params[market_id]


@external
@view
def pending_brackets(market_id: uint256) -> PendingBrackets:
    """
    @notice A queued bracket change and its earliest time (eta 0: none).
    @param market_id The market.
    @return PendingBrackets The change.
    """
    return self._pending_brackets[market_id]


@external
@view
def maintenance(market_id: uint256, notional: uint256, vol_mmf: uint256) -> uint256:
    """
    @notice The maintenance requirement of a notional under a market's brackets in force with a
            volatility floor (the engine's `market_state(m).vol_mmf` for now), rounded up.
    @param market_id The market.
    @param notional WAD USD.
    @param vol_mmf The volatility floor, WAD.
    @return uint256 WAD USD.
    """
    return br._maintenance(notional, self._brackets[market_id], vol_mmf)


# INTERNAL #


@internal
@view
def _engine() -> IMarginEngine:
    """
    @dev The engine; reverts before it is set.
    @return IMarginEngine The engine.
    """
    assert self.engine.address != empty(address), "config: engine not set"
    return self.engine


@internal
@view
def _check_listed(market_id: uint256):
    """
    @dev Reverts for an id that is not a listed market.
    @param market_id The market id.
    """
    assert market_id < staticcall self._engine().n_markets(), "config: unknown market"


@internal
@view
def _params(market_id: uint256) -> IMarginEngine.MarketParams:
    """
    @dev A market's parameters in force.
    @param market_id The market.
    @return IMarginEngine.MarketParams The parameters.
    """
    return (staticcall self._engine().market(market_id)).params


@internal
@pure
def _hot(p: IMarginEngine.MarketParams) -> uint256:
    """
    @dev The engine's packed hot-path word; every field fits its bits by the hard bounds.
    @param p The parameters.
    @return uint256 liq_penalty << 192 | z << 128 | horizon << 96 | tau << 64 | max_funding_rate.
    """
    return p.liq_penalty << 192 | p.z << 128 | p.horizon << 96 | p.tau << 64 | p.max_funding_rate


@internal
@view
def _check_params(p: IMarginEngine.MarketParams, first_mmf: uint256, min_keeper_reward: uint256):
    """
    @dev Reverts unless a market's parameters are within the hard bounds and consistent with its
         brackets (whose first fraction is the smallest) and the reward floor.
    @param p The parameters.
    @param first_mmf The market's smallest maintenance fraction.
    @param min_keeper_reward The liquidation reward floor they must pay for.
    """
    assert p.imf >= first_mmf and p.imf <= MAX_IMF, "config: imf out of bounds"
    assert p.im_multiplier >= WAD and p.im_multiplier <= MAX_IM_MULTIPLIER, "config: im multiplier out of bounds"
    # the penalty never exceeds maintenance, so a partial liquidation can reach its target
    assert p.liq_penalty <= first_mmf and p.liq_penalty <= MAX_LIQ_PENALTY, "config: penalty out of bounds"
    assert p.taker_fee <= MAX_TAKER_FEE, "config: fee out of bounds"
    assert p.skew_scale >= MIN_SKEW_SCALE and p.skew_scale <= MAX_SKEW_SCALE, "config: skew scale out of bounds"
    assert p.max_oi_long <= p.skew_scale and p.max_oi_short <= p.skew_scale, "config: oi cap above skew scale"
    assert (
        p.min_position_notional >= MIN_POSITION_NOTIONAL and p.min_position_notional <= MAX_POSITION_NOTIONAL_FLOOR
    ), "config: min notional out of bounds"
    assert p.max_funding_rate <= MAX_FUNDING_RATE, "config: funding out of bounds"
    assert p.z <= MAX_Z and p.horizon <= MAX_HORIZON, "config: volatility out of bounds"
    assert p.tau >= MIN_TAU and p.tau <= MAX_TAU, "config: tau out of bounds"
    # liquidating yourself must never pay: the smallest position's penalty covers the reward floor
    assert p.liq_penalty * p.min_position_notional // WAD >= min_keeper_reward, "config: penalty below reward floor"


@internal
@pure
def _check_brackets(brackets: DynArray[br.Bracket, MAX_BRACKETS]):
    """
    @dev Reverts unless the brackets are well formed and within the bounds; finite caps must fit
         the engine's packing.
    @param brackets The brackets.
    """
    br._check(brackets, MIN_MMF, MAX_MMF)
    n: uint256 = len(brackets)
    if n > 1:
        assert brackets[n - 2].cap < INF_CAP, "config: bracket cap too large"


@internal
@pure
def _params_lower(old: IMarginEngine.MarketParams, new: IMarginEngine.MarketParams) -> bool:
    """
    @dev Whether a parameter change raises nothing a trader must hold or pay.
    @param old The parameters in force.
    @param new The new ones.
    @return bool True when no risk field rises and tau is unchanged.
    """
    return (
        new.imf <= old.imf
        and new.im_multiplier <= old.im_multiplier
        and new.liq_penalty <= old.liq_penalty
        and new.taker_fee <= old.taker_fee
        and new.max_funding_rate <= old.max_funding_rate
        and new.z <= old.z
        and new.horizon <= old.horizon
        and new.tau == old.tau
    )


@internal
@pure
def _rate_at(brackets: DynArray[br.Bracket, MAX_BRACKETS], x: uint256) -> uint256:
    """
    @dev The marginal maintenance fraction just above notional x.
    @param brackets The brackets.
    @param x WAD USD.
    @return uint256 The fraction of the bracket containing (x, x + 1].
    """
    for b: br.Bracket in brackets:
        if x < b.cap:
            return b.mmf
    return brackets[len(brackets) - 1].mmf


@internal
@pure
def _brackets_lower(old: DynArray[br.Bracket, MAX_BRACKETS], new: DynArray[br.Bracket, MAX_BRACKETS]) -> bool:
    """
    @dev Whether new brackets ask no more at any notional: the new marginal fraction is at most the
         old one everywhere (checked at 0 and every edge of both tables, where the step functions
         change). This holds with any volatility floor too, since max(., vol) keeps the order.
    @param old The brackets in force.
    @param new The new ones.
    @return bool True when no marginal fraction rises.
    """
    if self._rate_at(new, 0) > self._rate_at(old, 0):
        return False
    for b: br.Bracket in old:
        if b.cap != max_value(uint256) and self._rate_at(new, b.cap) > self._rate_at(old, b.cap):
            return False
    for b: br.Bracket in new:
        if b.cap != max_value(uint256) and self._rate_at(new, b.cap) > self._rate_at(old, b.cap):
            return False
    return True


@internal
def _cancel(market_id: uint256, kind: uint256) -> bool:
    """
    @dev Drops a queued change of a kind, if any.
    @param market_id The market.
    @param kind PARAMS or BRACKETS.
    @return bool Whether one was queued.
    """
    if kind == PARAMS:
        if self._pending_params[market_id].eta == 0:
            return False
        self._pending_params[market_id] = empty(PendingParams)
    else:
        if self._pending_brackets[market_id].eta == 0:
            return False
        self._pending_brackets[market_id] = empty(PendingBrackets)
    log RiskChangeCancelled(market_id=market_id, kind=kind)
    return True


@internal
def _write_params(market_id: uint256, params: IMarginEngine.MarketParams):
    """
    @dev Writes parameters into the engine.
    @param market_id The market.
    @param params The parameters.
    """
    extcall self._engine().set_market(market_id, empty(address), params, self._hot(params))
    log MarketParamsSet(market_id=market_id, params=params)


@internal
def _write_brackets(market_id: uint256, brackets: DynArray[br.Bracket, MAX_BRACKETS]):
    """
    @dev Writes brackets into the engine, packed cap << 96 | mmf (the last cap as 2**160 - 1).
    @param market_id The market.
    @param brackets The brackets.
    """
    words: uint256[MAX_BRACKETS] = empty(uint256[MAX_BRACKETS])
    i: uint256 = 0
    for b: br.Bracket in brackets:
        words[i] = min(b.cap, INF_CAP) << 96 | b.mmf
        i += 1
    extcall self._engine().set_brackets(market_id, words)
    self._brackets[market_id] = brackets
    log BracketsSet(market_id=market_id, brackets=brackets)


@internal
def _set_globals(liq: IMarginEngine.LiquidationParams, max_pool_usage: uint256, reserve_factor: uint256):
    """
    @dev Checks and writes the liquidation and exposure parameters.
    @param liq The liquidation parameters.
    @param max_pool_usage Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor Fraction of the skew notional held back from LP withdrawals.
    """
    assert liq.liq_target >= MIN_LIQ_TARGET and liq.liq_target <= MAX_LIQ_TARGET, "config: target out of bounds"
    assert liq.keeper_share <= WAD, "config: keeper share out of bounds"
    assert liq.min_keeper_reward <= liq.max_keeper_reward and liq.max_keeper_reward <= MAX_KEEPER_REWARD, (
        "config: reward out of bounds"
    )
    # the engine packs rewards in units of 1e9 wei (a billionth of a dollar)
    assert liq.min_keeper_reward % 10**9 == 0 and liq.max_keeper_reward % 10**9 == 0, "config: reward granularity"
    assert max_pool_usage != 0 and max_pool_usage <= MAX_POOL_USAGE, "config: pool usage out of bounds"
    assert reserve_factor <= MAX_RESERVE_FACTOR, "config: reserve out of bounds"
    n: uint256 = staticcall self._engine().n_markets()
    for i: uint256 in range(MAX_MARKETS):
        if i >= n:
            break
        p: IMarginEngine.MarketParams = self._params(i)
        assert p.liq_penalty * p.min_position_notional // WAD >= liq.min_keeper_reward, "config: penalty below reward floor"
    self._liq = liq
    extcall self._engine().set_globals(liq, max_pool_usage, reserve_factor)
    log LiquidationParamsSet(params=liq)
    log ExposureParamsSet(max_pool_usage=max_pool_usage, reserve_factor=reserve_factor)


@internal
def _set_risk_delay(delay: uint256):
    """
    @dev Checks and stores the risk delay.
    @param delay Seconds.
    """
    assert delay >= MIN_RISK_DELAY and delay <= MAX_RISK_DELAY, "config: delay out of bounds"
    self.risk_delay = delay
    log RiskDelaySet(delay=delay)
