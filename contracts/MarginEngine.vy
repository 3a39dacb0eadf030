# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Ballast MarginEngine
@notice Holds traders' collateral, keeps their cross-margin positions on Chainlink-priced markets,
        enforces initial and maintenance margin, and lets anyone liquidate an account below
        maintenance for a reward. The RiskPool is every trader's counterparty.
@dev Units and rounding: docs/margin-math.md. USD values and fractions are WAD; sizes are signed
     base units with 18 decimals; token amounts in arguments are in the collateral token's own
     decimals and are converted once, at the edge.
@custom:kill The guardian (or the owner) may set `paused_open`, which blocks opening and increasing
             positions and LP deposits, and nothing else: deposits, reducing and closing,
             withdrawing free collateral and liquidation always stay open.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from interfaces import IMarginEngine
from interfaces import IOracle
from interfaces import IRiskPool
from modules import fixed_math as fm

implements: IMarginEngine

# @dev `ownable` is the storage of the owner; `ownable_2step` adds the two-step transfer.
initializes: ownable
# @dev Two-step ownership, so a typo cannot hand the protocol to a dead address.
initializes: ownable_2step[ownable := ownable]

exports: (
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


# CONSTANTS #

WAD: constant(uint256) = 10**18
IWAD: constant(int256) = 10**18
OWED_BIAS: constant(uint256) = 2**255
# @dev Markets are bits of an account's mask; one storage word holds all of an account's markets.
MAX_MARKETS: constant(uint256) = 16
# @dev Longest list a view takes or returns.
MAX_VIEW: constant(uint256) = 1000
# @dev Longest batch of `liquidate_many`.
MAX_BATCH: constant(uint256) = 200
# @dev Wei of equity added to the liquidation target per position, so that the rounding of notional,
#      requirements and penalties can never leave a partial liquidation a few wei short of it.
LIQ_SLACK: constant(uint256) = 10

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
MIN_LIQ_TARGET: constant(uint256) = 10**18
MAX_LIQ_TARGET: constant(uint256) = 3 * 10**18
MAX_KEEPER_REWARD: constant(uint256) = 10**22  # 10,000 USD
MAX_POOL_USAGE: constant(uint256) = 10 * 10**18
MAX_RESERVE_FACTOR: constant(uint256) = 10**18


# STRUCTS #


struct AccountState:
    equity: int256  # collateral plus unrealized PnL
    maintenance: uint256  # sum of maintenance requirements
    initial: uint256  # sum of initial requirements (only when asked for)
    penalty_base: uint256  # sum of liq_penalty * notional over positions
    positions: uint256  # number of positions


# STORAGE #

# @dev The collateral token and its scale to WAD (10 ** (18 - decimals)).
collateral_token: public(immutable(address))
_TOKEN: immutable(IERC20)
_SCALE: immutable(uint256)
_ISCALE: immutable(int256)

# @dev The ERC-4626 pool that takes the other side of every trade.
pool: public(immutable(address))

# @dev Collateral of each account, WAD USD. Negative only while unrealized gains on other
#      positions back it (a partial liquidation of mixed positions); bad debt is never stored.
collateral: public(HashMap[address, int256])

# @dev Positions by account and market id.
_positions: HashMap[address, HashMap[uint256, IMarginEngine.Position]]

# @dev Bit i set when the account holds a position in market i.
position_mask: public(HashMap[address, uint256])

# @dev Markets by id; ids are 0 .. n_markets - 1.
_markets: HashMap[uint256, IMarginEngine.Market]
n_markets: public(uint256)

# @dev Accounts that hold a position, as a dense list with 1-based positions for O(1) removal.
_account_list: HashMap[uint256, address]
_account_slot: HashMap[address, uint256]
n_accounts: public(uint256)

# @dev Liquidation parameters shared by all markets.
_liq: IMarginEngine.LiquidationParams

# @dev Insurance fund, WAD USD, held in the engine's tokens.
_insurance: uint256

# @dev Net WAD owed to the pool that is not a whole token yet (>= 0, < scale), or, when negative,
#      what the pool owed and could not pay. engine_balance * scale == sum(collateral) + insurance
#      + pool_owed at all times. Stored with a bias so that the slot never returns to zero (a
#      zero-to-nonzero write costs 17,100 gas more than a nonzero one on every other settlement).
_pool_owed_biased: uint256

# @dev Skew notional of a market may reach this fraction of the pool's assets.
max_pool_usage: public(uint256)
# @dev Share of the skew notional the pool keeps back from LP withdrawals.
reserve_factor: public(uint256)

guardian: public(address)
paused_open: public(bool)


@deploy
def __init__(
    token: address,
    pool_: address,
    liq: IMarginEngine.LiquidationParams,
    max_pool_usage_: uint256,
    reserve_factor_: uint256,
    guardian_: address,
):
    """
    @notice Deploys the engine for one collateral token and its pool.
    @param token The collateral token (a USD stablecoin, valued at 1 USD), 0 to 18 decimals.
    @param pool_ The RiskPool over the same token.
    @param liq The liquidation parameters.
    @param max_pool_usage_ Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor_ Fraction of the skew notional held back from LP withdrawals.
    @param guardian_ The address that may set `paused_open`.
    """
    ownable.__init__()
    ownable_2step.__init__()
    assert token != empty(address) and pool_ != empty(address), "engine: zero address"
    decimals: uint8 = staticcall IERC20Detailed(token).decimals()
    assert decimals <= 18, "engine: token decimals"
    collateral_token = token
    _TOKEN = IERC20(token)
    _SCALE = 10 ** convert(18 - decimals, uint256)
    _ISCALE = convert(_SCALE, int256)
    pool = pool_
    self._set_liquidation_params(liq)
    self._set_exposure(max_pool_usage_, reserve_factor_)
    self.guardian = guardian_
    self._pool_owed_biased = OWED_BIAS
    log IMarginEngine.GuardianSet(guardian=guardian_)


# ACCOUNT ACTIONS #


@external
def deposit(amount: uint256, account: address = msg.sender):
    """
    @notice Deposits collateral tokens for `account` (the sender by default).
    @dev Credits only what arrived, so a fee-on-transfer token cannot inflate collateral.
         Never paused.
    @param amount Token units to pull from the sender.
    @param account The account credited.
    """
    assert amount != 0, "engine: zero amount"
    assert account != empty(address), "engine: zero address"
    received: uint256 = self._pull(msg.sender, amount)
    self.collateral[account] += convert(received * _SCALE, int256)
    log IMarginEngine.Deposit(account=account, sender=msg.sender, amount=received)


@external
def withdraw(amount: uint256, receiver: address = msg.sender):
    """
    @notice Withdraws free collateral to `receiver` (the sender by default).
    @dev The account must keep equity >= its initial requirement. Never paused. A receiver other
         than the sender lets a trader the token blacklists still take its money out.
    @param amount Token units to send.
    @param receiver The address that receives the tokens.
    """
    assert amount != 0, "engine: zero amount"
    assert receiver != empty(address), "engine: zero address"
    debit: int256 = convert(amount * _SCALE, int256)
    left: int256 = self.collateral[msg.sender] - debit
    assert left >= 0, "engine: insufficient collateral"
    self.collateral[msg.sender] = left
    mask: uint256 = self.position_mask[msg.sender]
    if mask != 0:
        st: AccountState = self._state(msg.sender, mask, self._load_prices(mask, empty(uint256[MAX_MARKETS])), True)
        assert st.equity >= convert(st.initial, int256), "engine: insufficient margin"
    self._push(receiver, amount)
    log IMarginEngine.Withdraw(account=msg.sender, receiver=receiver, amount=amount)


@external
def trade(market_id: uint256, size_delta: int256, acceptable_price: uint256) -> uint256:
    """
    @notice Trades `size_delta` base units of a market on cross margin.
    @dev The fill price is the oracle price moved by the skew the trade creates; a buy pays at most
         `acceptable_price`, a sell receives at least it. Opening and increasing need equity >= the
         initial requirement afterwards and are blocked by `paused_open`; reducing and closing are
         always allowed while the account's equity stays non-negative.
    @param market_id The market.
    @param size_delta Signed base units: positive buys, negative sells.
    @param acceptable_price The worst fill price accepted, WAD.
    @return uint256 The fill price, WAD.
    """
    self._check_market(market_id)
    assert size_delta != 0, "engine: zero size"
    account: address = msg.sender
    pos: IMarginEngine.Position = self._positions[account][market_id]
    old_abs: uint256 = fm._abs(pos.size)
    increasing: bool = pos.size == 0 or (pos.size > 0) == (size_delta > 0) or fm._abs(size_delta) > old_abs
    assert not (increasing and self.paused_open), "engine: paused"

    p: uint256 = staticcall IOracle(self._markets[market_id].oracle).price()
    oi_long: uint256 = self._markets[market_id].oi_long
    oi_short: uint256 = self._markets[market_id].oi_short
    skew_scale: uint256 = self._markets[market_id].params.skew_scale
    fill: uint256 = self._fill_price(p, convert(oi_long, int256) - convert(oi_short, int256), size_delta, skew_scale)
    if size_delta > 0:
        assert fill <= acceptable_price, "engine: price limit"
    else:
        assert fill >= acceptable_price, "engine: price limit"

    new_size: int256 = 0
    new_cost: int256 = 0
    realized: int256 = 0
    new_size, new_cost, realized = self._apply(pos.size, pos.cost, size_delta, fill)
    traded: uint256 = fm._ceil_div_u(fm._abs(size_delta) * fill, WAD)
    fee: uint256 = fm._wmul_up(traded, self._markets[market_id].params.taker_fee)

    # open interest: take the old position out, put the new one in
    if pos.size > 0:
        oi_long -= old_abs
    else:
        oi_short -= old_abs
    if new_size > 0:
        oi_long += convert(new_size, uint256)
    else:
        oi_short += fm._abs(new_size)
    self._markets[market_id].oi_long = oi_long
    self._markets[market_id].oi_short = oi_short

    if increasing:
        if new_size > 0:
            assert oi_long <= self._markets[market_id].params.max_oi_long, "engine: open interest cap"
        else:
            assert oi_short <= self._markets[market_id].params.max_oi_short, "engine: open interest cap"
        skew_notional: uint256 = fm._abs(convert(oi_long, int256) - convert(oi_short, int256)) * p // WAD
        pool_assets: uint256 = staticcall IRiskPool(pool).totalAssets() * _SCALE
        assert skew_notional <= pool_assets * self.max_pool_usage // WAD, "engine: pool exposure"
    if new_size != 0:
        notional: uint256 = fm._ceil_div_u(fm._abs(new_size) * p, WAD)
        assert notional >= self._markets[market_id].params.min_position_notional, "engine: position too small"

    self._positions[account][market_id] = IMarginEngine.Position(size=new_size, cost=new_cost)
    self.collateral[account] += realized - convert(fee, int256)
    mask: uint256 = self._update_mask(account, market_id, new_size != 0)

    if mask != 0:
        prices: uint256[MAX_MARKETS] = empty(uint256[MAX_MARKETS])
        prices[market_id] = p
        st: AccountState = self._state(account, mask, self._load_prices(mask, prices), increasing)
        if increasing:
            # no new exposure on unrealized gains alone: collateral must be non-negative too
            assert st.equity >= convert(st.initial, int256) and self.collateral[account] >= 0, "engine: insufficient margin"
        else:
            assert st.equity >= 0, "engine: account underwater"
    else:
        assert self.collateral[account] >= 0, "engine: account underwater"

    self._settle_pool(convert(fee, int256) - realized)
    log IMarginEngine.Trade(
        account=account,
        market_id=market_id,
        size_delta=size_delta,
        fill_price=fill,
        fee=fee,
        realized_pnl=realized,
        new_size=new_size,
    )
    return fill


@external
def fund_insurance(amount: uint256):
    """
    @notice Adds tokens to the insurance fund. Anyone may.
    @param amount Token units.
    """
    assert amount != 0, "engine: zero amount"
    received: uint256 = self._pull(msg.sender, amount)
    self._insurance += received * _SCALE
    log IMarginEngine.InsuranceFunded(sender=msg.sender, amount=received)


# LIQUIDATION #


@external
def liquidate(account: address) -> uint256:
    """
    @notice Liquidates an account below maintenance: closes the smallest fraction of every cross
            position that restores equity >= liq_target * maintenance after the penalty, or all
            of them where that is not possible. Permissionless.
    @dev Never moves the account's tokens: the reward goes to the caller and the account's balance
         stays inside the engine, so a blacklisted or reverting account cannot block it.
    @param account The account to liquidate.
    @return uint256 The reward paid to the caller, WAD USD.
    """
    mask: uint256 = self.position_mask[account]
    assert mask != 0, "engine: not liquidatable"
    prices: uint256[MAX_MARKETS] = self._load_prices(mask, empty(uint256[MAX_MARKETS]))
    st: AccountState = self._state(account, mask, prices, False)
    assert st.equity < convert(st.maintenance, int256), "engine: not liquidatable"
    reward: uint256 = 0
    pool_delta: int256 = 0
    reward, pool_delta = self._liquidate(account, mask, prices, st)
    self._settle_pool(pool_delta)
    return self._pay_reward(reward)


@external
def liquidate_many(accounts: DynArray[address, MAX_BATCH]) -> (uint256, uint256):
    """
    @notice Liquidates every liquidatable account of a list and skips the others, so a keeper that
            loses a race pays almost nothing and one bad entry never spoils a batch.
    @dev Reads each market's price once, settles with the pool once and pays the reward once.
    @param accounts The accounts to try.
    @return (uint256, uint256) The number liquidated and the total reward paid, WAD USD.
    """
    prices: uint256[MAX_MARKETS] = empty(uint256[MAX_MARKETS])
    count: uint256 = 0
    reward: uint256 = 0
    pool_delta: int256 = 0
    for account: address in accounts:
        mask: uint256 = self.position_mask[account]
        if mask == 0:
            continue
        prices = self._load_prices(mask, prices)
        st: AccountState = self._state(account, mask, prices, False)
        if st.equity >= convert(st.maintenance, int256):
            continue
        r: uint256 = 0
        d: int256 = 0
        r, d = self._liquidate(account, mask, prices, st)
        reward += r
        pool_delta += d
        count += 1
    if count != 0:
        self._settle_pool(pool_delta)
        reward = self._pay_reward(reward)
    return count, reward


# VIEWS #


@external
@view
def health(account: address) -> IMarginEngine.Health:
    """
    @notice An account's equity, requirements and whether it is liquidatable, at oracle prices.
    @param account The account.
    @return IMarginEngine.Health The account's health.
    """
    mask: uint256 = self.position_mask[account]
    return self._health(account, mask, self._load_prices(mask, empty(uint256[MAX_MARKETS])))


@external
@view
def healths(accounts: DynArray[address, MAX_VIEW]) -> DynArray[IMarginEngine.Health, MAX_VIEW]:
    """
    @notice `health` of many accounts in one call, reading each market's price once.
    @param accounts The accounts.
    @return DynArray[IMarginEngine.Health, MAX_VIEW] Their health, in the same order.
    """
    out: DynArray[IMarginEngine.Health, MAX_VIEW] = []
    prices: uint256[MAX_MARKETS] = empty(uint256[MAX_MARKETS])
    for account: address in accounts:
        mask: uint256 = self.position_mask[account]
        prices = self._load_prices(mask, prices)
        out.append(self._health(account, mask, prices))
    return out


@external
@view
def account_at(i: uint256) -> address:
    """
    @notice The i-th account of the list of accounts holding a position.
    @param i Index, below n_accounts().
    @return address The account.
    """
    assert i < self.n_accounts, "engine: index out of range"
    return self._account_list[i]


@external
@view
def liquidatable_accounts(start: uint256, limit: uint256) -> DynArray[address, MAX_VIEW]:
    """
    @notice The liquidatable accounts among list entries [start, start + limit), for bots.
    @param start First index of the account list to look at.
    @param limit How many entries to look at, at most 1000.
    @return DynArray[address, MAX_VIEW] The liquidatable ones, in list order.
    """
    assert limit <= MAX_VIEW, "engine: limit too large"
    out: DynArray[address, MAX_VIEW] = []
    end: uint256 = min(start + limit, self.n_accounts)
    if start >= end:
        return out
    prices: uint256[MAX_MARKETS] = empty(uint256[MAX_MARKETS])
    for i: uint256 in range(start, end, bound=MAX_VIEW):
        account: address = self._account_list[i]
        mask: uint256 = self.position_mask[account]
        prices = self._load_prices(mask, prices)
        st: AccountState = self._state(account, mask, prices, False)
        if st.equity < convert(st.maintenance, int256):
            out.append(account)
    return out


@external
@view
def position(account: address, market_id: uint256) -> IMarginEngine.Position:
    """
    @notice An account's position in a market.
    @param account The account.
    @param market_id The market.
    @return IMarginEngine.Position Size and cost basis.
    """
    return self._positions[account][market_id]


@external
@view
def market(market_id: uint256) -> IMarginEngine.Market:
    """
    @notice A market's oracle, parameters and open interest.
    @param market_id The market.
    @return IMarginEngine.Market The market.
    """
    self._check_market(market_id)
    return self._markets[market_id]


@external
@view
def price(market_id: uint256) -> uint256:
    """
    @notice A market's validated oracle price, WAD.
    @param market_id The market.
    @return uint256 The price.
    """
    self._check_market(market_id)
    return staticcall IOracle(self._markets[market_id].oracle).price()


@external
@view
def fill_price(market_id: uint256, size_delta: int256) -> uint256:
    """
    @notice The price a trade of `size_delta` would fill at now.
    @param market_id The market.
    @param size_delta Signed base units.
    @return uint256 The fill price, WAD.
    """
    self._check_market(market_id)
    p: uint256 = staticcall IOracle(self._markets[market_id].oracle).price()
    skew: int256 = convert(self._markets[market_id].oi_long, int256) - convert(self._markets[market_id].oi_short, int256)
    return self._fill_price(p, skew, size_delta, self._markets[market_id].params.skew_scale)


@external
@view
def insurance_fund() -> uint256:
    """
    @notice The insurance fund, WAD USD.
    @return uint256 The fund.
    """
    return self._insurance


@external
@view
def pool_owed() -> int256:
    """
    @notice WAD the engine owes the pool below one token (>= 0), or the pool's unpaid shortfall
            (< 0). engine_balance * scale == sum(collateral) + insurance_fund + pool_owed.
    @return int256 WAD.
    """
    return self._pool_owed()


@external
@view
def liquidation_params() -> IMarginEngine.LiquidationParams:
    """
    @notice The liquidation parameters.
    @return IMarginEngine.LiquidationParams The parameters.
    """
    return self._liq


@external
@view
def scale() -> uint256:
    """
    @notice 10 ** (18 - token decimals): WAD per token unit.
    @return uint256 The scale.
    """
    return _SCALE


@external
@view
def reserve_requirement() -> uint256:
    """
    @notice Token units the pool holds back from LP withdrawals: reserve_factor times the skew
            notional of every market, at the oracles' last answers (stale or not).
    @return uint256 Token units, rounded up.
    """
    total: uint256 = 0
    for i: uint256 in range(MAX_MARKETS):
        if i >= self.n_markets:
            break
        skew: uint256 = fm._abs(convert(self._markets[i].oi_long, int256) - convert(self._markets[i].oi_short, int256))
        if skew == 0:
            continue
        p: uint256 = 0
        updated_at: uint256 = 0
        ok: bool = False
        p, updated_at, ok = staticcall IOracle(self._markets[i].oracle).latest()
        total += fm._ceil_div_u(skew * p, WAD)
    return fm._ceil_div_u(fm._wmul_up(total, self.reserve_factor), _SCALE)


# GOVERNANCE #


@external
def add_market(oracle: address, params: IMarginEngine.MarketParams) -> uint256:
    """
    @notice Lists a market. Owner only.
    @param oracle The IOracle adapter of the market's feed.
    @param params Its risk parameters, within the hard bounds.
    @return uint256 The new market id.
    """
    ownable._check_owner()
    assert oracle != empty(address), "engine: zero address"
    market_id: uint256 = self.n_markets
    assert market_id < MAX_MARKETS, "engine: too many markets"
    self._check_market_params(params, self._liq.min_keeper_reward)
    self._markets[market_id] = IMarginEngine.Market(oracle=oracle, params=params, oi_long=0, oi_short=0)
    self.n_markets = market_id + 1
    log IMarginEngine.MarketAdded(market_id=market_id, oracle=oracle)
    log IMarginEngine.MarketParamsSet(market_id=market_id, params=params)
    return market_id


@external
def set_market_params(market_id: uint256, params: IMarginEngine.MarketParams):
    """
    @notice Sets a market's risk parameters. Owner only; within the hard bounds.
    @param market_id The market.
    @param params The new parameters.
    """
    ownable._check_owner()
    self._check_market(market_id)
    self._check_market_params(params, self._liq.min_keeper_reward)
    self._markets[market_id].params = params
    log IMarginEngine.MarketParamsSet(market_id=market_id, params=params)


@external
def set_liquidation_params(liq: IMarginEngine.LiquidationParams):
    """
    @notice Sets the liquidation parameters. Owner only; within the hard bounds.
    @param liq The new parameters.
    """
    ownable._check_owner()
    self._set_liquidation_params(liq)


@external
def set_exposure(max_pool_usage_: uint256, reserve_factor_: uint256):
    """
    @notice Sets how far a market's skew may use the pool and what the pool holds back.
    @param max_pool_usage_ Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor_ Fraction of the skew notional held back from LP withdrawals.
    """
    ownable._check_owner()
    self._set_exposure(max_pool_usage_, reserve_factor_)


@external
def set_guardian(guardian_: address):
    """
    @notice Names the guardian. Owner only.
    @param guardian_ The new guardian (empty to have none).
    """
    ownable._check_owner()
    self.guardian = guardian_
    log IMarginEngine.GuardianSet(guardian=guardian_)


@external
def set_paused_open(paused: bool):
    """
    @notice Blocks or unblocks opening and increasing positions and LP deposits.
    @dev Guardian or owner. Nothing else can be paused.
    @param paused The new state.
    """
    assert msg.sender == self.guardian or msg.sender == ownable.owner, "engine: not guardian"
    self.paused_open = paused
    log IMarginEngine.PausedOpenSet(paused=paused, by=msg.sender)


# INTERNAL: MATH #


@internal
@pure
def _fill_price(p: uint256, skew: int256, delta: int256, skew_scale: uint256) -> uint256:
    """
    @dev fill = P * (1 + (skew + skew_after) / (2 * skew_scale)), the adjustment rounded against
         the taker (up for a buy, down for a sell).
    @param p Oracle price.
    @param skew Long minus short open interest before the trade.
    @param delta The trade's signed size.
    @param skew_scale The market's skew scale.
    @return uint256 The fill price.
    """
    num: int256 = (2 * skew + delta) * convert(p, int256)
    den: int256 = 2 * convert(skew_scale, int256)
    adj: int256 = 0
    if delta > 0:
        adj = fm._ceil_div(num, den)
    else:
        adj = fm._floor_div(num, den)
    fill: int256 = convert(p, int256) + adj
    assert fill > 0, "engine: fill price"
    return convert(fill, uint256)


@internal
@pure
def _apply(size: int256, cost: int256, delta: int256, fill: uint256) -> (int256, int256, int256):
    """
    @dev A trade of `delta` on a position at price `fill`: (new size, new cost, realized PnL).
    @param size The position's size.
    @param cost The position's cost basis.
    @param delta The trade's signed size.
    @param fill The price.
    @return (int256, int256, int256) New size, new cost basis, realized PnL.
    """
    ifill: int256 = convert(fill, int256)
    if size == 0 or (size > 0) == (delta > 0):
        return size + delta, cost + fm._ceil_div(delta * ifill, IWAD), 0
    closed: int256 = -delta
    if fm._abs(closed) <= fm._abs(size):
        return self._reduce(size, cost, closed, fill)
    # a flip: close the whole position, open the rest at the same price
    rest: int256 = size + delta
    realized: int256 = fm._floor_div(size * ifill, IWAD) - cost
    return rest, fm._ceil_div(rest * ifill, IWAD), realized


@internal
@pure
def _reduce(size: int256, cost: int256, closed: int256, p: uint256) -> (int256, int256, int256):
    """
    @dev Closes `closed` (same sign as size, not larger) at price p: (new size, new cost, realized).
         The cost removed is rounded up and the proceeds down, against the account.
    @param size The position's size.
    @param cost The position's cost basis.
    @param closed The part closed.
    @param p The price.
    @return (int256, int256, int256) New size, new cost basis, realized PnL.
    """
    removed: int256 = cost
    if closed != size:
        removed = fm._ceil_div(cost * convert(fm._abs(closed), int256), convert(fm._abs(size), int256))
    proceeds: int256 = fm._floor_div(closed * convert(p, int256), IWAD)
    return size - closed, cost - removed, proceeds - removed


# INTERNAL: STATE #


@internal
@view
def _check_market(market_id: uint256):
    """
    @dev Reverts for an id that is not a listed market.
    @param market_id The market id.
    """
    assert market_id < self.n_markets, "engine: unknown market"


@internal
@view
def _load_prices(mask: uint256, known: uint256[MAX_MARKETS]) -> uint256[MAX_MARKETS]:
    """
    @dev Fills in the oracle price of every market of `mask` not already known.
    @param mask Markets needed.
    @param known Prices read so far (0 = not read).
    @return uint256[MAX_MARKETS] The prices, each read at most once.
    """
    prices: uint256[MAX_MARKETS] = known
    for i: uint256 in range(MAX_MARKETS):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 1 and prices[i] == 0:
            prices[i] = staticcall IOracle(self._markets[i].oracle).price()
    return prices


@internal
@view
def _state(account: address, mask: uint256, prices: uint256[MAX_MARKETS], with_initial: bool) -> AccountState:
    """
    @dev Equity and requirements of an account's cross positions at the given prices.
    @param account The account.
    @param mask Its markets.
    @param prices Prices of (at least) those markets.
    @param with_initial Whether to compute the initial requirement too.
    @return AccountState The state.
    """
    st: AccountState = AccountState(equity=self.collateral[account], maintenance=0, initial=0, penalty_base=0, positions=0)
    for i: uint256 in range(MAX_MARKETS):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 0:
            continue
        pos: IMarginEngine.Position = self._positions[account][i]
        p: uint256 = prices[i]
        notional: uint256 = fm._ceil_div_u(fm._abs(pos.size) * p, WAD)
        st.equity += fm._floor_div(pos.size * convert(p, int256), IWAD) - pos.cost
        mm: uint256 = fm._wmul_up(notional, self._markets[i].params.mmf)
        st.maintenance += mm
        st.positions += 1
        if with_initial:
            st.initial += max(
                fm._wmul_up(notional, self._markets[i].params.imf),
                fm._wmul_up(mm, self._markets[i].params.im_multiplier),
            )
        else:
            st.penalty_base += fm._wmul_up(notional, self._markets[i].params.liq_penalty)
    return st


@internal
@view
def _health(account: address, mask: uint256, prices: uint256[MAX_MARKETS]) -> IMarginEngine.Health:
    """
    @dev Health of an account at the given prices.
    @param account The account.
    @param mask Its markets.
    @param prices Prices of (at least) those markets.
    @return IMarginEngine.Health Its health.
    """
    st: AccountState = self._state(account, mask, prices, True)
    return IMarginEngine.Health(
        equity=st.equity,
        initial_req=st.initial,
        maintenance_req=st.maintenance,
        liquidatable=mask != 0 and st.equity < convert(st.maintenance, int256),
    )


@internal
def _update_mask(account: address, market_id: uint256, has_position: bool) -> uint256:
    """
    @dev Sets or clears a market's bit and keeps the account list in step.
    @param account The account.
    @param market_id The market.
    @param has_position Whether the account now holds a position there.
    @return uint256 The new mask.
    """
    old: uint256 = self.position_mask[account]
    new: uint256 = old
    if has_position:
        new = old | (1 << market_id)
    else:
        new = old & ~(1 << market_id)
    if new == old:
        return new
    self.position_mask[account] = new
    if old == 0:
        self._list_account(account)
    elif new == 0:
        self._unlist_account(account)
    return new


@internal
def _list_account(account: address):
    """
    @dev Appends an account to the list of accounts holding a position.
    @param account The account.
    """
    n: uint256 = self.n_accounts
    self._account_list[n] = account
    self._account_slot[account] = n + 1
    self.n_accounts = n + 1
    log IMarginEngine.AccountListed(account=account, listed=True)


@internal
def _unlist_account(account: address):
    """
    @dev Removes an account from the list: the last entry takes its place.
    @param account The account.
    """
    index: uint256 = self._account_slot[account] - 1
    last: uint256 = self.n_accounts - 1
    if index != last:
        moved: address = self._account_list[last]
        self._account_list[index] = moved
        self._account_slot[moved] = index + 1
    self._account_list[last] = empty(address)
    self._account_slot[account] = 0
    self.n_accounts = last
    log IMarginEngine.AccountListed(account=account, listed=False)


# INTERNAL: LIQUIDATION #


@internal
def _liquidate(account: address, mask: uint256, prices: uint256[MAX_MARKETS], st: AccountState) -> (uint256, int256):
    """
    @dev Liquidates a liquidatable account (docs/margin-math.md, Liquidation).
    @param account The account.
    @param mask Its markets.
    @param prices Their prices.
    @param st Its state at those prices.
    @return (uint256, int256) The reward owed to the caller (WAD) and what the pool gains (WAD).
    """
    liq: IMarginEngine.LiquidationParams = self._liq
    fraction: uint256 = WAD
    if st.equity > 0:
        target: int256 = convert(fm._wmul_up(st.maintenance, liq.liq_target), int256)
        den: int256 = target - convert(st.penalty_base, int256)
        if den > 0:
            num: int256 = target - st.equity + convert(LIQ_SLACK * st.positions, int256)
            f: int256 = fm._ceil_div(num * IWAD, den)
            if f < IWAD:
                fraction = convert(f, uint256)

    realized: int256 = 0
    closed_notional: uint256 = 0
    penalty: uint256 = 0
    equity_left: int256 = 0
    new_mask: uint256 = mask
    for i: uint256 in range(MAX_MARKETS):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 0:
            continue
        pos: IMarginEngine.Position = self._positions[account][i]
        p: uint256 = prices[i]
        size_abs: uint256 = fm._abs(pos.size)
        close_abs: uint256 = size_abs
        if fraction < WAD:
            close_abs = min(fm._wmul_up(size_abs, fraction), size_abs)
            if fm._ceil_div_u((size_abs - close_abs) * p, WAD) < self._markets[i].params.min_position_notional:
                close_abs = size_abs
        closed: int256 = convert(close_abs, int256)
        if pos.size < 0:
            closed = -closed
        new_size: int256 = 0
        new_cost: int256 = 0
        r: int256 = 0
        new_size, new_cost, r = self._reduce(pos.size, pos.cost, closed, p)
        realized += r
        n: uint256 = fm._ceil_div_u(close_abs * p, WAD)
        closed_notional += n
        penalty += fm._wmul_up(n, self._markets[i].params.liq_penalty)
        if pos.size > 0:
            self._markets[i].oi_long -= close_abs
        else:
            self._markets[i].oi_short -= close_abs
        if new_size == 0:
            self._positions[account][i] = empty(IMarginEngine.Position)
            new_mask &= ~(1 << i)
        else:
            self._positions[account][i] = IMarginEngine.Position(size=new_size, cost=new_cost)
            equity_left += fm._floor_div(new_size * convert(p, int256), IWAD) - new_cost
        log IMarginEngine.PositionLiquidated(account=account, market_id=i, size_closed=closed, price=p, realized_pnl=r)

    coll: int256 = self.collateral[account] + realized
    bad_debt: uint256 = 0
    if new_mask == 0 and coll < 0:
        bad_debt = convert(-coll, uint256)
        coll = 0
    equity_left += coll
    paid: uint256 = 0
    if equity_left > 0:
        paid = min(penalty, convert(equity_left, uint256))
    coll -= convert(paid, int256)
    self.collateral[account] = coll

    # clamp, then never more than the penalty: a small partial close must not pay its own liquidator
    reward: uint256 = min(
        max(min(penalty * liq.keeper_share // WAD, liq.max_keeper_reward), liq.min_keeper_reward), penalty
    )
    # the fund takes the paid penalty, pays the reward and the bad debt; the pool covers the rest
    fund: int256 = convert(self._insurance + paid, int256) - convert(reward, int256)
    insurance_paid: uint256 = 0
    written_off: uint256 = 0
    if fund < 0:
        written_off = convert(-fund, uint256)
        log IMarginEngine.InsuranceShortfall(amount=written_off)
        fund = 0
    if bad_debt != 0:
        insurance_paid = min(bad_debt, convert(fund, uint256))
        fund -= convert(insurance_paid, int256)
        written_off += bad_debt - insurance_paid
        log IMarginEngine.BadDebt(
            account=account, amount=bad_debt, insurance_paid=insurance_paid, pool_written_off=bad_debt - insurance_paid
        )
    self._insurance = convert(fund, uint256)

    if new_mask != mask:
        self.position_mask[account] = new_mask
        if new_mask == 0:
            self._unlist_account(account)
            fraction = WAD
    log IMarginEngine.Liquidation(
        account=account,
        liquidator=msg.sender,
        fraction=fraction,
        closed_notional=closed_notional,
        penalty=penalty,
        penalty_paid=paid,
        reward=reward,
        full=new_mask == 0,
    )
    return reward, -realized - convert(written_off, int256)


# INTERNAL: TOKENS #


@internal
def _pull(sender: address, amount: uint256) -> uint256:
    """
    @dev Pulls tokens and returns what arrived (a fee-on-transfer token credits less).
    @param sender The payer.
    @param amount Token units asked for.
    @return uint256 Token units received.
    """
    before: uint256 = staticcall _TOKEN.balanceOf(self)
    assert extcall _TOKEN.transferFrom(sender, self, amount, default_return_value=True), "engine: transfer failed"
    return staticcall _TOKEN.balanceOf(self) - before


@internal
def _push(receiver: address, amount: uint256):
    """
    @dev Sends tokens.
    @param receiver The receiver.
    @param amount Token units.
    """
    assert extcall _TOKEN.transfer(receiver, amount, default_return_value=True), "engine: transfer failed"


@internal
def _pay_reward(reward: uint256) -> uint256:
    """
    @dev Pays a WAD reward to the caller in whole tokens; the sub-token rest goes to the fund.
    @param reward WAD USD.
    @return uint256 The WAD value actually paid.
    """
    tokens: uint256 = reward // _SCALE
    self._insurance += reward - tokens * _SCALE
    if tokens != 0:
        self._push(msg.sender, tokens)
    return tokens * _SCALE


@internal
def _settle_pool(delta: int256):
    """
    @dev Settles what the engine owes the pool (delta > 0) or the pool owes the engine, in whole
         tokens, carrying the sub-token rest; a shortfall of the pool stays recorded as negative
         `pool_owed` and is paid from what the pool gains later.
    @param delta WAD the pool gains from this operation.
    """
    owed: int256 = self._pool_owed() + delta
    if owed >= 0:
        tokens: int256 = owed // _ISCALE
        if tokens != 0:
            self._push(pool, convert(tokens, uint256))
        owed -= tokens * _ISCALE
    else:
        need: uint256 = convert(fm._ceil_div(-owed, _ISCALE), uint256)
        before: uint256 = staticcall _TOKEN.balanceOf(self)
        extcall IRiskPool(pool).pay(need)
        # credit what arrived, not what the pool says it sent (a fee-on-transfer token)
        got: uint256 = staticcall _TOKEN.balanceOf(self) - before
        owed += convert(got, int256) * _ISCALE
        if got < need:
            log IMarginEngine.PoolShortfall(amount=convert(-owed, uint256))
    if owed >= 0:
        self._pool_owed_biased = OWED_BIAS + convert(owed, uint256)
    else:
        self._pool_owed_biased = OWED_BIAS - convert(-owed, uint256)


@internal
@view
def _pool_owed() -> int256:
    """
    @dev The unbiased `pool_owed`.
    @return int256 WAD owed to the pool (negative: owed by it).
    """
    biased: uint256 = self._pool_owed_biased
    if biased >= OWED_BIAS:
        return convert(biased - OWED_BIAS, int256)
    return -convert(OWED_BIAS - biased, int256)


# INTERNAL: PARAMETERS #


@internal
@view
def _check_market_params(p: IMarginEngine.MarketParams, min_keeper_reward: uint256):
    """
    @dev Reverts unless a market's parameters are within the hard bounds and consistent.
    @param p The parameters.
    @param min_keeper_reward The liquidation reward floor they must pay for.
    """
    assert p.mmf >= MIN_MMF and p.mmf <= MAX_MMF, "engine: mmf out of bounds"
    assert p.imf >= p.mmf and p.imf <= MAX_IMF, "engine: imf out of bounds"
    assert p.im_multiplier >= WAD and p.im_multiplier <= MAX_IM_MULTIPLIER, "engine: im multiplier out of bounds"
    assert p.liq_penalty <= p.mmf and p.liq_penalty <= MAX_LIQ_PENALTY, "engine: penalty out of bounds"
    assert p.taker_fee <= MAX_TAKER_FEE, "engine: fee out of bounds"
    assert p.skew_scale >= MIN_SKEW_SCALE and p.skew_scale <= MAX_SKEW_SCALE, "engine: skew scale out of bounds"
    assert p.max_oi_long <= p.skew_scale and p.max_oi_short <= p.skew_scale, "engine: oi cap above skew scale"
    assert (
        p.min_position_notional >= MIN_POSITION_NOTIONAL and p.min_position_notional <= MAX_POSITION_NOTIONAL_FLOOR
    ), "engine: min notional out of bounds"
    # liquidating yourself must never pay: the smallest position's penalty covers the reward floor
    assert p.liq_penalty * p.min_position_notional // WAD >= min_keeper_reward, "engine: penalty below reward floor"


@internal
def _set_liquidation_params(liq: IMarginEngine.LiquidationParams):
    """
    @dev Checks and stores the liquidation parameters.
    @param liq The parameters.
    """
    assert liq.liq_target >= MIN_LIQ_TARGET and liq.liq_target <= MAX_LIQ_TARGET, "engine: target out of bounds"
    assert liq.keeper_share <= WAD, "engine: keeper share out of bounds"
    assert liq.min_keeper_reward <= liq.max_keeper_reward and liq.max_keeper_reward <= MAX_KEEPER_REWARD, (
        "engine: reward out of bounds"
    )
    for i: uint256 in range(MAX_MARKETS):
        if i >= self.n_markets:
            break
        p: IMarginEngine.MarketParams = self._markets[i].params
        assert p.liq_penalty * p.min_position_notional // WAD >= liq.min_keeper_reward, "engine: penalty below reward floor"
    self._liq = liq
    log IMarginEngine.LiquidationParamsSet(params=liq)


@internal
def _set_exposure(max_pool_usage_: uint256, reserve_factor_: uint256):
    """
    @dev Checks and stores the exposure parameters.
    @param max_pool_usage_ Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor_ Fraction of the skew notional held back from LP withdrawals.
    """
    assert max_pool_usage_ != 0 and max_pool_usage_ <= MAX_POOL_USAGE, "engine: pool usage out of bounds"
    assert reserve_factor_ <= MAX_RESERVE_FACTOR, "engine: reserve out of bounds"
    self.max_pool_usage = max_pool_usage_
    self.reserve_factor = reserve_factor_
    log IMarginEngine.ExposureParamsSet(max_pool_usage=max_pool_usage_, reserve_factor=reserve_factor_)
