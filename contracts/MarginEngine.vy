# pragma version ~=0.4.3
# pragma nonreentrancy on
# pragma optimize codesize
"""
@title Ballast MarginEngine
@notice Holds traders' collateral, keeps their cross and isolated positions on Chainlink-priced
        markets, enforces initial and maintenance margin (bracketed and scaled by each market's
        on-chain volatility), accrues funding, and lets anyone liquidate a position below
        maintenance for a reward. The RiskPool is every trader's counterparty.
@dev Units and rounding: docs/margin-math.md. USD values and fractions are WAD; sizes are signed
     base units with 18 decimals; token amounts in arguments are in the collateral token's own
     decimals and are converted once, at the edge. Parameters are written only by the RiskConfig
     contract (`config`), which owns the hard bounds, ownership and the risk timelock.
@custom:kill The guardian (through RiskConfig) may set `paused_open`, which blocks opening and
             increasing positions and LP deposits, and nothing else: deposits, reducing and
             closing, adding margin, withdrawing free collateral and liquidation stay open.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from interfaces import IMarginEngine
from interfaces import IOracle
from interfaces import IRiskPool
from modules import fixed_math as fm
from modules import volatility as vol

implements: IMarginEngine


# CONSTANTS #

WAD: constant(uint256) = 10**18
IWAD: constant(int256) = 10**18
OWED_BIAS: constant(uint256) = 2**255
# @dev Markets are bits of an account's mask; one storage word holds all of an account's markets:
#      bit i = a position in market i, bit ISO + i = that position is isolated.
MAX_MARKETS: constant(uint256) = 16
ISO: constant(uint256) = 16
LOW: constant(uint256) = 2**16 - 1
CROSS: constant(uint256) = max_value(uint256)
# @dev Longest list a view takes or returns.
MAX_VIEW: constant(uint256) = 1000
# @dev Longest batch of `liquidate_many`.
MAX_BATCH: constant(uint256) = 200
MAX_BRACKETS: constant(uint256) = 8
# @dev Wei of equity added to the liquidation target per position, so that the rounding of notional,
#      requirements and penalties can never leave a partial liquidation a few wei short of it.
LIQ_SLACK: constant(uint256) = 10
# @dev The volatility term never asks for more than this maintenance fraction.
MAX_VOL_MMF: constant(uint256) = 5 * 10**17
DAY: constant(uint256) = 86400
# @dev Packing of a bracket word: cap << 96 | mmf; the last bracket's cap is stored as INF_CAP.
INF_CAP: constant(uint256) = 2**160 - 1
M64: constant(uint256) = 2**64 - 1
M96: constant(uint256) = 2**96 - 1
M128: constant(uint256) = 2**128 - 1
FUNDING_BIAS: constant(int256) = 2**95
PRICE_UNIT: constant(uint256) = 10**9


# STRUCTS #


struct AccountState:
    equity: int256  # collateral (or isolated margin) plus unrealized PnL minus funding owed
    maintenance: uint256  # sum of maintenance requirements
    initial: uint256  # sum of initial requirements (only when asked for)
    penalty_base: uint256  # sum of liq_penalty * notional over positions
    positions: uint256  # number of positions


# @dev Per-market figures of one call: the price read and what it implies, each market at most once.
struct Ctx:
    prices: uint256[MAX_MARKETS]  # 0 = not read yet
    funding: int256[MAX_MARKETS]  # funding index accrued to now
    vol_mmf: uint256[MAX_MARKETS]  # volatility maintenance fraction


struct Pos:
    size: int256
    cost: int256
    funding: int256  # funding index at the last settlement
    margin: int256  # isolated margin, WAD


# STORAGE #

# @dev The collateral token and its scale to WAD (10 ** (18 - decimals)).
collateral_token: public(immutable(address))
_TOKEN: immutable(IERC20)
_SCALE: immutable(uint256)
_ISCALE: immutable(int256)

# @dev The ERC-4626 pool that takes the other side of every trade.
pool: public(immutable(address))
# @dev The RiskConfig contract: the only writer of parameters and of `paused_open`.
config: public(immutable(address))

# @dev Cross collateral of each account, WAD USD. Negative only while unrealized gains on other
#      cross positions back it (a partial liquidation of mixed positions); bad debt is never stored.
collateral: public(HashMap[address, int256])

# @dev Positions by account and market id.
_positions: HashMap[address, HashMap[uint256, Pos]]

# @dev Bit i: a position in market i; bit 16 + i: it is isolated.
position_mask: public(HashMap[address, uint256])

# @dev Markets by id; ids are 0 .. n_markets - 1. Open interest lives packed in `_oi`.
_markets: HashMap[uint256, IMarginEngine.Market]
n_markets: public(uint256)
# @dev long << 128 | short, base units.
_oi: HashMap[uint256, uint256]
# @dev Brackets, packed cap << 96 | mmf, read lazily: a small position reads one word.
_brackets: HashMap[uint256, uint256[MAX_BRACKETS]]
# @dev Parameters of the hot paths in one word: liq_penalty | z | horizon | tau | max_funding_rate.
_hot: HashMap[uint256, uint256]
# @dev One word per market, written on every touch: funding index + 2**95 (96 bits, WAD USD per
#      whole base unit) << 160 | variance (64 bits, WAD per second) << 96 | last price / 1e9
#      (64 bits) << 32 | last update time (32 bits). Hard bounds keep each field in its bits.
_mstate: HashMap[uint256, uint256]
# @dev oracle << 96 | min_position_notional: what a liquidation reads besides the hot word.
_hot2: HashMap[uint256, uint256]

# @dev Accounts that hold a position, as a dense list with 1-based positions for O(1) removal.
_account_list: HashMap[uint256, address]
_account_slot: HashMap[address, uint256]
n_accounts: public(uint256)

# @dev Liquidation parameters shared by all markets.
# @dev liq_target | keeper_share << 64 | min_keeper_reward / 1e9 << 128 | max_keeper_reward / 1e9
#      << 192 (RiskConfig keeps rewards whole multiples of 1e9 wei).
_liq: uint256

# @dev Insurance fund, WAD USD, held in the engine's tokens.
_insurance: uint256

# @dev Net WAD owed to the pool that is not a whole token yet (>= 0, < scale), or, when negative,
#      what the pool owed and could not pay. engine_balance * scale == sum(collateral)
#      + sum(isolated margin) + insurance + pool_owed at all times. Stored with a bias so that the
#      slot never returns to zero (a zero-to-nonzero write costs 17,100 gas more).
_pool_owed_biased: uint256

# @dev Skew notional of a market may reach this fraction of the pool's assets.
max_pool_usage: public(uint256)
# @dev Share of the skew notional the pool keeps back from LP withdrawals.
reserve_factor: public(uint256)

paused_open: public(bool)


@deploy
def __init__(token: address, pool_: address, config_: address):
    """
    @notice Deploys the engine for one collateral token, its pool and its RiskConfig.
    @dev RiskConfig then names this engine and writes every parameter (markets, liquidation,
         exposure) within its hard bounds; nothing trades before it does.
    @param token The collateral token (a USD stablecoin, valued at 1 USD), 0 to 18 decimals.
    @param pool_ The RiskPool over the same token.
    @param config_ The RiskConfig contract.
    """
    self._req(token != empty(address) and pool_ != empty(address) and config_ != empty(address), "engine: zero address")
    decimals: uint8 = staticcall IERC20Detailed(token).decimals()
    self._req(decimals <= 18, "engine: token decimals")
    collateral_token = token
    _TOKEN = IERC20(token)
    _SCALE = 10 ** convert(18 - decimals, uint256)
    _ISCALE = convert(_SCALE, int256)
    pool = pool_
    config = config_
    self._pool_owed_biased = OWED_BIAS


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
    self._req(amount != 0, "engine: zero amount")
    self._req(account != empty(address), "engine: zero address")
    received: uint256 = self._pull(msg.sender, amount)
    self.collateral[account] += convert(received * _SCALE, int256)
    log IMarginEngine.Deposit(account=account, sender=msg.sender, amount=received)


@external
def withdraw(amount: uint256, receiver: address = msg.sender):
    """
    @notice Withdraws free collateral to `receiver` (the sender by default).
    @dev The account must keep cross equity >= its cross initial requirement. Never paused. A
         receiver other than the sender lets a trader the token blacklists take its money out.
    @param amount Token units to send.
    @param receiver The address that receives the tokens.
    """
    self._req(amount != 0, "engine: zero amount")
    self._req(receiver != empty(address), "engine: zero address")
    self._debit_cross(msg.sender, convert(amount * _SCALE, int256))
    self._push(receiver, amount)
    log IMarginEngine.Withdraw(account=msg.sender, receiver=receiver, amount=amount)


@external
def trade(market_id: uint256, size_delta: int256, acceptable_price: uint256) -> uint256:
    """
    @notice Trades `size_delta` base units of a market on cross margin.
    @dev The fill price is the oracle price moved by the skew the trade creates; a buy pays at most
         `acceptable_price`, a sell receives at least it. Opening and increasing need cross equity
         >= the cross initial requirement afterwards and are blocked by `paused_open`; reducing and
         closing are always allowed while the account's equity stays non-negative.
    @param market_id The market.
    @param size_delta Signed base units: positive buys, negative sells.
    @param acceptable_price The worst fill price accepted, WAD.
    @return uint256 The fill price, WAD.
    """
    self._req(size_delta != 0, "engine: zero size")
    return self._trade(market_id, size_delta, acceptable_price, False, 0)


@external
def trade_isolated(market_id: uint256, size_delta: int256, acceptable_price: uint256, margin_delta: int256) -> uint256:
    """
    @notice Trades an isolated position: its margin is its own, and its loss never reaches the
            account's cross collateral or other positions.
    @dev `margin_delta` token units move from cross collateral into the position's margin first
         (negative: back out). Opening, increasing and removing margin need the position's equity
         >= its initial requirement afterwards; moving margin in needs the cross account to stay
         above its initial requirement, as a withdrawal does. Closing returns the margin left to
         cross collateral.
    @param market_id The market.
    @param size_delta Signed base units (0 only moves margin).
    @param acceptable_price The worst fill price accepted, WAD.
    @param margin_delta Signed token units moved into (> 0) or out of (< 0) the position's margin.
    @return uint256 The fill price (the oracle price when size_delta is 0), WAD.
    """
    self._req(size_delta != 0 or margin_delta != 0, "engine: zero size")
    return self._trade(market_id, size_delta, acceptable_price, True, margin_delta)


@external
def add_isolated_margin(market_id: uint256, amount: uint256):
    """
    @notice Moves cross collateral into an isolated position's margin. Never paused.
    @param market_id The market of the isolated position.
    @param amount Token units.
    """
    self._req(amount != 0, "engine: zero amount")
    self._trade(market_id, 0, 0, True, convert(amount, int256))


@external
def remove_isolated_margin(market_id: uint256, amount: uint256):
    """
    @notice Moves margin of an isolated position back to cross collateral; the position must keep
            equity >= its initial requirement.
    @param market_id The market of the isolated position.
    @param amount Token units.
    """
    self._req(amount != 0, "engine: zero amount")
    self._trade(market_id, 0, 0, True, -convert(amount, int256))


@external
def poke(market_id: uint256):
    """
    @notice Reads a market's price, updates its volatility estimate and accrues its funding.
            Anyone may; never paused.
    @param market_id The market.
    """
    self._check_market(market_id)
    p: uint256 = staticcall IOracle(self._oracle(market_id)).price()
    self._touch(market_id, p)


@external
def fund_insurance(amount: uint256):
    """
    @notice Adds tokens to the insurance fund. Anyone may.
    @param amount Token units.
    """
    self._req(amount != 0, "engine: zero amount")
    received: uint256 = self._pull(msg.sender, amount)
    self._insurance += received * _SCALE
    log IMarginEngine.InsuranceFunded(sender=msg.sender, amount=received)


# LIQUIDATION #


@external
def liquidate(account: address) -> uint256:
    """
    @notice Liquidates an account's cross positions below maintenance: closes the smallest
            fraction of every cross position that restores equity >= liq_target * maintenance
            after the penalty, or all of them where that is not possible. Permissionless.
    @dev Never moves the account's tokens: the reward goes to the caller and the account's balance
         stays inside the engine, so a blacklisted or reverting account cannot block it. Isolated
         positions are not touched (see `liquidate_isolated`).
    @param account The account to liquidate.
    @return uint256 The reward paid to the caller, WAD USD.
    """
    return self._liquidate_one(account, CROSS)


@external
def liquidate_isolated(account: address, market_id: uint256) -> uint256:
    """
    @notice Liquidates one isolated position below its own maintenance requirement, partially to
            the target like a cross liquidation. Its margin alone pays the penalty; bad debt goes
            to the insurance fund, then the pool, never to the account's cross collateral.
    @param account The account.
    @param market_id The market of the isolated position.
    @return uint256 The reward paid to the caller, WAD USD.
    """
    self._req(market_id < MAX_MARKETS, "engine: not liquidatable")
    return self._liquidate_one(account, market_id)


@external
def liquidate_many(accounts: DynArray[address, MAX_BATCH]) -> (uint256, uint256):
    """
    @notice Liquidates every liquidatable account of a list, cross positions and each isolated
            position below maintenance alike, and skips the others, so a keeper that loses a race
            pays almost nothing and one bad entry never spoils a batch.
    @dev Reads each market's price once, settles with the pool once and pays the reward once.
         A keeper finds isolated positions through `health(...).liquidatable` (or
         `liquidatable_accounts`) and liquidates them with the same batch.
    @param accounts The accounts to try.
    @return (uint256, uint256) The number of accounts liquidated and the total reward, WAD USD.
    """
    ctx: Ctx = empty(Ctx)
    count: uint256 = 0
    reward: uint256 = 0
    pool_delta: int256 = 0
    for account: address in accounts:
        mask: uint256 = self.position_mask[account]
        if mask == 0:
            continue
        ctx = self._load_touch(mask & LOW, ctx)
        done: bool = False
        # the cross positions first (which == CROSS), then each isolated position
        which: uint256 = CROSS
        for j: uint256 in range(MAX_MARKETS + 1):
            bits: uint256 = 0
            base: int256 = 0
            bits, base = self._unit(account, mask, which)
            if bits != 0:
                st: AccountState = self._state(base, account, bits, ctx, False)
                if st.equity < convert(st.maintenance, int256):
                    r: uint256 = 0
                    d: int256 = 0
                    r, d = self._liquidate(account, mask, bits, ctx, st, which)
                    mask = self.position_mask[account]
                    reward += r
                    pool_delta += d
                    done = True
            which = j
            if mask >> (ISO + j) == 0:
                break
        if done:
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
    @notice An account's cross equity and requirements at oracle prices, and whether anything of
            it (cross, or any isolated position) is liquidatable.
    @param account The account.
    @return IMarginEngine.Health The account's health.
    """
    mask: uint256 = self.position_mask[account]
    return self._health(account, mask, self._load(mask & LOW, empty(Ctx)))


@external
@view
def healths(accounts: DynArray[address, MAX_VIEW]) -> DynArray[IMarginEngine.Health, MAX_VIEW]:
    """
    @notice `health` of many accounts in one call, reading each market's price once.
    @param accounts The accounts.
    @return DynArray[IMarginEngine.Health, MAX_VIEW] Their health, in the same order.
    """
    out: DynArray[IMarginEngine.Health, MAX_VIEW] = []
    ctx: Ctx = empty(Ctx)
    for account: address in accounts:
        mask: uint256 = self.position_mask[account]
        ctx = self._load(mask & LOW, ctx)
        out.append(self._health(account, mask, ctx))
    return out


@external
@view
def isolated_health(account: address, market_id: uint256) -> IMarginEngine.Health:
    """
    @notice An isolated position's equity (margin plus unrealized PnL minus funding owed) and
            requirements; liquidatable when its equity is below its maintenance requirement.
    @param account The account.
    @param market_id The market.
    @return IMarginEngine.Health The position's health (zeros when it holds no isolated position).
    """
    mask: uint256 = self.position_mask[account]
    if market_id >= MAX_MARKETS or (mask >> (ISO + market_id)) & 1 == 0:
        return empty(IMarginEngine.Health)
    bit: uint256 = 1 << market_id
    st: AccountState = self._state(self._positions[account][market_id].margin, account, bit, self._load(bit, empty(Ctx)), True)
    return IMarginEngine.Health(
        equity=st.equity,
        initial_req=st.initial,
        maintenance_req=st.maintenance,
        liquidatable=st.equity < convert(st.maintenance, int256),
    )


@external
@view
def account_at(i: uint256) -> address:
    """
    @notice The i-th account of the list of accounts holding a position.
    @param i Index, below n_accounts().
    @return address The account.
    """
    self._req(i < self.n_accounts, "engine: index out of range")
    return self._account_list[i]


@external
@view
def liquidatable_accounts(start: uint256, limit: uint256) -> DynArray[address, MAX_VIEW]:
    """
    @notice The accounts among list entries [start, start + limit) with anything liquidatable
            (cross or isolated), for bots; `liquidate_many` of the result liquidates all of it.
    @param start First index of the account list to look at.
    @param limit How many entries to look at, at most 1000.
    @return DynArray[address, MAX_VIEW] The liquidatable ones, in list order.
    """
    self._req(limit <= MAX_VIEW, "engine: limit too large")
    out: DynArray[address, MAX_VIEW] = []
    end: uint256 = min(start + limit, self.n_accounts)
    if start >= end:
        return out
    ctx: Ctx = empty(Ctx)
    for i: uint256 in range(start, end, bound=MAX_VIEW):
        account: address = self._account_list[i]
        mask: uint256 = self.position_mask[account]
        ctx = self._load(mask & LOW, ctx)
        if self._health(account, mask, ctx).liquidatable:
            out.append(account)
    return out


@external
@view
def position(account: address, market_id: uint256) -> IMarginEngine.Position:
    """
    @notice An account's position in a market.
    @param account The account.
    @param market_id The market.
    @return IMarginEngine.Position Size, cost basis, funding entry, isolated margin and mode.
    """
    pos: Pos = self._positions[account][market_id]
    return IMarginEngine.Position(
        size=pos.size,
        cost=pos.cost,
        funding_entry=pos.funding,
        margin=pos.margin,
        isolated=market_id < MAX_MARKETS and (self.position_mask[account] >> (ISO + market_id)) & 1 == 1,
    )


@external
@view
def market(market_id: uint256) -> IMarginEngine.Market:
    """
    @notice A market's oracle, parameters and open interest.
    @param market_id The market.
    @return IMarginEngine.Market The market.
    """
    self._check_market(market_id)
    m: IMarginEngine.Market = self._markets[market_id]
    oi: uint256 = self._oi[market_id]
    m.oi_long = oi >> 128
    m.oi_short = oi & M128
    return m



@external
@view
def market_state(market_id: uint256) -> IMarginEngine.MarketState:
    """
    @notice A market's funding and volatility as the next touch would record them now.
    @param market_id The market.
    @return IMarginEngine.MarketState Funding index and rate, variance, vol_mmf, last update.
    """
    self._check_market(market_id)
    p: uint256 = staticcall IOracle(self._oracle(market_id)).price()
    index: int256 = 0
    var: uint256 = 0
    vmmf: uint256 = 0
    index, var, vmmf = self._market_now(market_id, p)
    return IMarginEngine.MarketState(
        funding_index=index,
        funding_rate=self._funding_rate(market_id),
        variance=var,
        vol_mmf=vmmf,
    )



@external
@view
def price(market_id: uint256) -> uint256:
    """
    @notice A market's validated oracle price, WAD.
    @param market_id The market.
    @return uint256 The price.
    """
    self._check_market(market_id)
    return staticcall IOracle(self._oracle(market_id)).price()


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
    p: uint256 = staticcall IOracle(self._oracle(market_id)).price()
    return self._fill_price(p, self._skew(market_id), size_delta, self._markets[market_id].params.skew_scale)


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
            (< 0). engine_balance * scale == sum(collateral) + sum(isolated margin)
            + insurance_fund + pool_owed.
    @return int256 WAD.
    """
    b: uint256 = self._pool_owed_biased
    if b >= OWED_BIAS:
        return convert(b - OWED_BIAS, int256)
    return -convert(OWED_BIAS - b, int256)



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
            notional of every market, at the oracles' last answers (stale or not; a zero,
            negative or reverting feed counts at the last price the engine recorded).
    @return uint256 Token units, rounded up.
    """
    total: uint256 = 0
    for i: uint256 in range(MAX_MARKETS):
        if i >= self.n_markets:
            break
        skew: uint256 = fm._abs(self._skew(i))
        if skew == 0:
            continue
        p: uint256 = 0
        updated_at: uint256 = 0
        ok: bool = False
        p, updated_at, ok = staticcall IOracle(self._oracle(i)).latest()
        if p == 0:
            # a broken feed must not release the reserve: the last price the engine recorded
            p = ((self._mstate[i] >> 32) & M64) * PRICE_UNIT
        total += fm._ceil_div_u(skew * p, WAD)
    return fm._ceil_div_u(fm._wmul_up(total, self.reserve_factor), _SCALE)


# CONFIGURATION (RiskConfig only; it checks the hard bounds) #


@external
def set_market(market_id: uint256, oracle: address, params: IMarginEngine.MarketParams, hot: uint256):
    """
    @notice Lists a market (market_id == n_markets) or replaces a listed market's parameters.
    @dev RiskConfig only: it checks the bounds, packs the hot-path word (liq_penalty << 192 |
         z << 128 | horizon << 96 | tau << 64 | max_funding_rate) and logs the change. Funding is
         accrued and volatility updated under the old parameters first.
    @param market_id The market.
    @param oracle Its IOracle adapter (ignored for a listed market).
    @param params Its parameters.
    @param hot The packed hot-path word of the same parameters.
    """
    self._only_config()
    n: uint256 = self.n_markets
    if market_id == n:
        self._req(n < MAX_MARKETS, "engine: too many markets")
        self._markets[market_id].oracle = oracle
        self.n_markets = n + 1
        self._mstate[market_id] = convert(FUNDING_BIAS, uint256) << 160 | block.timestamp
    else:
        self._check_market(market_id)
        self._touch(market_id, staticcall IOracle(self._oracle(market_id)).price())
    self._markets[market_id].params = params
    self._hot[market_id] = hot
    self._hot2[market_id] = convert(self._markets[market_id].oracle, uint256) << 96 | params.min_position_notional


@external
def set_brackets(market_id: uint256, words: uint256[MAX_BRACKETS]):
    """
    @notice Replaces a market's maintenance brackets, packed cap << 96 | mmf, the last cap
            2**160 - 1 (unbounded). RiskConfig only: it checks them, keeps them readable
            (`RiskConfig.brackets`) and logs the change.
    @param market_id The market.
    @param words The packed brackets.
    """
    self._only_config()
    self._check_market(market_id)
    self._brackets[market_id] = words


@external
def set_globals(liq: IMarginEngine.LiquidationParams, max_pool_usage_: uint256, reserve_factor_: uint256):
    """
    @notice Sets the liquidation parameters and how far a market's skew may use the pool.
            RiskConfig only (it checks the bounds and logs the change).
    @param liq The liquidation parameters.
    @param max_pool_usage_ Largest skew notional of a market, as a fraction of pool assets.
    @param reserve_factor_ Fraction of the skew notional held back from LP withdrawals.
    """
    self._only_config()
    self._liq = (
        liq.liq_target | liq.keeper_share << 64 | (liq.min_keeper_reward // PRICE_UNIT) << 128
        | (liq.max_keeper_reward // PRICE_UNIT) << 192
    )
    self.max_pool_usage = max_pool_usage_
    self.reserve_factor = reserve_factor_


@external
def set_paused_open(paused: bool):
    """
    @notice Blocks or unblocks opening and increasing positions and LP deposits.
    @dev RiskConfig only (its guardian or owner). Nothing else can be paused.
    @param paused The new state.
    """
    self._only_config()
    self.paused_open = paused


# INTERNAL: TRADING #


@internal
def _trade(market_id: uint256, size_delta: int256, acceptable_price: uint256, isolated: bool, margin_tokens: int256) -> uint256:
    """
    @dev A cross or isolated trade, or (size_delta == 0) a move of isolated margin.
    @param market_id The market.
    @param size_delta Signed base units.
    @param acceptable_price The worst fill price accepted.
    @param isolated Whether the position is isolated.
    @param margin_tokens Token units moved from cross collateral into the isolated margin.
    @return uint256 The fill price.
    """
    self._check_market(market_id)
    account: address = msg.sender
    mask: uint256 = self.position_mask[account]
    pos: Pos = self._positions[account][market_id]
    if pos.size != 0:
        self._req(((mask >> (ISO + market_id)) & 1 == 1) == isolated, "engine: margin mode mismatch")
    else:
        self._req(size_delta != 0, "engine: no position")
    old_abs: uint256 = fm._abs(pos.size)
    increasing: bool = size_delta != 0 and (
        pos.size == 0 or (pos.size > 0) == (size_delta > 0) or fm._abs(size_delta) > old_abs
    )
    self._req(not (increasing and self.paused_open), "engine: paused")

    p: uint256 = staticcall IOracle(self._oracle(market_id)).price()
    ctx: Ctx = empty(Ctx)
    ctx.prices[market_id] = p
    index: int256 = 0
    vmmf: uint256 = 0
    index, vmmf = self._touch(market_id, p)
    ctx.funding[market_id] = index
    ctx.vol_mmf[market_id] = vmmf
    # funding of the position so far is settled now, against the account
    funding: int256 = fm._ceil_div(pos.size * (ctx.funding[market_id] - pos.funding), IWAD)
    fill: uint256 = p
    fee: uint256 = 0
    realized: int256 = 0
    new_size: int256 = pos.size
    new_cost: int256 = pos.cost
    if size_delta != 0:
        fill = self._fill(market_id, p, size_delta, acceptable_price)
        new_size, new_cost, realized = self._apply(pos.size, pos.cost, size_delta, fill)
        traded: uint256 = fm._ceil_div_u(fm._abs(size_delta) * fill, WAD)
        fee = fm._wmul_up(traded, self._markets[market_id].params.taker_fee)
        self._move_oi(market_id, pos.size, new_size, increasing, p)
        if new_size != 0:
            notional: uint256 = fm._ceil_div_u(fm._abs(new_size) * p, WAD)
            self._req(notional >= self._markets[market_id].params.min_position_notional, "engine: position too small")
    change: int256 = realized - funding - convert(fee, int256)

    margin_delta: int256 = margin_tokens * _ISCALE
    margin: int256 = 0
    if isolated:
        if margin_delta > 0:
            # margin taken from cross collateral: a withdrawal from the cross account
            self._debit_cross(account, margin_delta)
        elif margin_delta < 0:
            self.collateral[account] -= margin_delta
        margin = pos.margin + margin_delta + change
        self._req(margin >= 0, "engine: account underwater")
        if new_size == 0:
            # closed: the margin left returns to cross collateral
            self.collateral[account] += margin
            margin = 0
        if margin_delta != 0:
            settled: int256 = 0
            if size_delta == 0:
                settled = funding
            log IMarginEngine.IsolatedMargin(account=account, market_id=market_id, delta=margin_delta, funding=settled)
    else:
        self.collateral[account] += change
    self._positions[account][market_id] = Pos(size=new_size, cost=new_cost, funding=ctx.funding[market_id], margin=margin)
    self._update_mask(account, market_id, new_size != 0, isolated)

    if not isolated:
        self._check_cross(account, ctx, increasing)
    elif new_size != 0:
        st: AccountState = self._state(margin, account, 1 << market_id, ctx, True)
        if increasing or margin_delta < 0:
            self._req(st.equity >= convert(st.initial, int256), "engine: insufficient margin")
        else:
            self._req(st.equity >= 0, "engine: account underwater")

    self._settle_pool(-change)
    if size_delta != 0:
        log IMarginEngine.Trade(
            account=account,
            market_id=market_id,
            size_delta=size_delta,
            fill_price=fill,
            fee=fee,
            realized_pnl=realized,
            funding=funding,
            new_size=new_size,
            isolated=isolated,
        )
    return fill


@internal
@view
def _fill(market_id: uint256, p: uint256, size_delta: int256, acceptable_price: uint256) -> uint256:
    """
    @dev The skew-moved fill price, checked against the trader's limit.
    @param market_id The market.
    @param p Oracle price.
    @param size_delta The trade's signed size.
    @param acceptable_price The trader's limit.
    @return uint256 The fill price.
    """
    fill: uint256 = self._fill_price(p, self._skew(market_id), size_delta, self._markets[market_id].params.skew_scale)
    if size_delta > 0:
        self._req(fill <= acceptable_price, "engine: price limit")
    else:
        self._req(fill >= acceptable_price, "engine: price limit")
    return fill


@internal
def _move_oi(market_id: uint256, old_size: int256, new_size: int256, increasing: bool, p: uint256):
    """
    @dev Takes a position's old size out of open interest and puts its new size in; new exposure
         must stay within the side's cap and the pool's capacity.
    @param market_id The market.
    @param old_size The position's size before.
    @param new_size Its size after.
    @param increasing Whether the trade opens or increases exposure.
    @param p Oracle price.
    """
    oi: uint256 = self._oi[market_id]
    oi_long: uint256 = oi >> 128
    oi_short: uint256 = oi & M128
    if old_size > 0:
        oi_long -= convert(old_size, uint256)
    else:
        oi_short -= fm._abs(old_size)
    if new_size > 0:
        oi_long += convert(new_size, uint256)
    else:
        oi_short += fm._abs(new_size)
    if increasing:
        if new_size > 0:
            self._req(oi_long <= self._markets[market_id].params.max_oi_long, "engine: open interest cap")
        else:
            self._req(oi_short <= self._markets[market_id].params.max_oi_short, "engine: open interest cap")
        skew_notional: uint256 = (max(oi_long, oi_short) - min(oi_long, oi_short)) * p // WAD
        pool_assets: uint256 = staticcall IRiskPool(pool).totalAssets() * _SCALE
        self._req(skew_notional <= pool_assets * self.max_pool_usage // WAD, "engine: pool exposure")
    self._oi[market_id] = oi_long << 128 | oi_short


@internal
def _debit_cross(account: address, debit: int256):
    """
    @dev Takes WAD out of cross collateral; the cross account must keep non-negative collateral
         and equity >= its initial requirement.
    @param account The account.
    @param debit WAD.
    """
    left: int256 = self.collateral[account] - debit
    self._req(left >= 0, "engine: insufficient collateral")
    self.collateral[account] = left
    self._check_cross(account, empty(Ctx), True)


@internal
@view
def _check_cross(account: address, ctx: Ctx, strict: bool):
    """
    @dev The cross account after a change: with `strict` (new exposure, or collateral taken out)
         equity >= the initial requirement and non-negative collateral, since no new exposure may
         stand on unrealized gains alone; otherwise non-negative equity.
    @param account The account.
    @param ctx Figures read so far.
    @param strict Whether the initial requirement applies.
    """
    mask: uint256 = self.position_mask[account]
    cross: uint256 = mask & LOW & ~(mask >> ISO)
    coll: int256 = self.collateral[account]
    if cross == 0:
        self._req(coll >= 0, "engine: account underwater")
        return
    st: AccountState = self._state(coll, account, cross, self._load(cross, ctx), True)
    if strict:
        self._req(st.equity >= convert(st.initial, int256) and coll >= 0, "engine: insufficient margin")
    else:
        self._req(st.equity >= 0, "engine: account underwater")


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
    self._req(fill > 0, "engine: fill price")
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


# INTERNAL: MARKETS #


@internal
@pure
def _req(ok: bool, reason: String[32]):
    """
    @dev Reverts with `reason` unless `ok`: one copy of the revert code for every check.
    @param ok The condition.
    @param reason The revert reason.
    """
    assert ok, reason


@internal
@view
def _only_config():
    """
    @dev Reverts unless the caller is the RiskConfig contract.
    """
    self._req(msg.sender == config, "engine: not config")


@internal
@view
def _check_market(market_id: uint256):
    """
    @dev Reverts for an id that is not a listed market.
    @param market_id The market id.
    """
    self._req(market_id < self.n_markets, "engine: unknown market")


@internal
@view
def _oracle(market_id: uint256) -> address:
    """
    @dev A market's oracle, from the packed word a liquidation reads anyway.
    @param market_id The market.
    @return address The IOracle adapter.
    """
    return convert(self._hot2[market_id] >> 96, address)


@internal
@view
def _skew(market_id: uint256) -> int256:
    """
    @dev Long minus short open interest.
    @param market_id The market.
    @return int256 The skew, base units.
    """
    oi: uint256 = self._oi[market_id]
    return convert(oi >> 128, int256) - convert(oi & M128, int256)


@internal
@view
def _funding_rate(market_id: uint256) -> int256:
    """
    @dev r = clamp(skew / skew_scale, -1, 1) * max_funding_rate, per day; positive: longs pay.
    @param market_id The market.
    @return int256 WAD per day.
    """
    scale_: int256 = convert(self._markets[market_id].params.skew_scale, int256)
    frac: int256 = max(min(self._skew(market_id) * IWAD // scale_, IWAD), -IWAD)
    return frac * convert(self._hot[market_id] & M64, int256) // IWAD


@internal
@view
def _market_now(market_id: uint256, p: uint256) -> (int256, uint256, uint256):
    """
    @dev What a touch at price p would record now: the funding index accrued to now under the
         current skew, the variance after this read, and the volatility maintenance fraction.
    @param market_id The market.
    @param p The price read now.
    @return (int256, uint256, uint256) Funding index, variance rate, vol_mmf.
    """
    w: uint256 = self._mstate[market_id]
    last: uint256 = w & (2**32 - 1)
    hot: uint256 = self._hot[market_id]
    index: int256 = convert(w >> 160, int256) - FUNDING_BIAS
    var: uint256 = (w >> 96) & M64
    if block.timestamp > last:
        dt: int256 = convert(block.timestamp - last, int256)
        # F accrues rate * price * dt; rounded down (it is shared by both sides)
        index += fm._floor_div(self._funding_rate(market_id) * convert(p, int256) * dt, IWAD * convert(DAY, int256))
        q: uint256 = p // PRICE_UNIT
        var = min(vol._next_var(var, (w >> 32) & M64, last, q, block.timestamp, (hot >> 64) & (2**32 - 1)), M64)
    vmmf: uint256 = min(vol._vol_mmf(var, (hot >> 128) & M64, (hot >> 96) & (2**32 - 1)), MAX_VOL_MMF)
    return index, var, vmmf


@internal
def _touch(market_id: uint256, p: uint256) -> (int256, uint256):
    """
    @dev Records a price read: accrues funding and updates the volatility estimate.
    @param market_id The market.
    @param p The price read now.
    @return (int256, uint256) The funding index and vol_mmf now.
    """
    index: int256 = 0
    var: uint256 = 0
    vmmf: uint256 = 0
    index, var, vmmf = self._market_now(market_id, p)
    w: uint256 = self._mstate[market_id]
    q: uint256 = min(p // PRICE_UNIT, M64)
    if w & (2**32 - 1) == block.timestamp and (w >> 32) & M64 != 0:
        # a second read in the same second keeps the first price (if there was one), so that the
        # move between them still counts at the next read instead of vanishing
        q = (w >> 32) & M64
    self._mstate[market_id] = convert(index + FUNDING_BIAS, uint256) << 160 | var << 96 | q << 32 | block.timestamp
    return index, vmmf


@internal
def _load_touch(mask: uint256, known: Ctx) -> Ctx:
    """
    @dev Reads every market of `mask` not read yet and records each read (funding, volatility).
    @param mask Markets needed (low 16 bits).
    @param known Figures read so far.
    @return Ctx The figures, each market read at most once.
    """
    ctx: Ctx = known
    for i: uint256 in range(MAX_MARKETS):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 1 and ctx.prices[i] == 0:
            p: uint256 = staticcall IOracle(self._oracle(i)).price()
            index: int256 = 0
            vmmf: uint256 = 0
            index, vmmf = self._touch(i, p)
            ctx.prices[i] = p
            ctx.funding[i] = index
            ctx.vol_mmf[i] = vmmf
    return ctx


@internal
@view
def _load(mask: uint256, known: Ctx) -> Ctx:
    """
    @dev Reads every market of `mask` not read yet, without recording anything (views).
    @param mask Markets needed (low 16 bits).
    @param known Figures read so far.
    @return Ctx The figures, each market read at most once.
    """
    ctx: Ctx = known
    for i: uint256 in range(MAX_MARKETS):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 1 and ctx.prices[i] == 0:
            p: uint256 = staticcall IOracle(self._oracle(i)).price()
            index: int256 = 0
            var: uint256 = 0
            vmmf: uint256 = 0
            index, var, vmmf = self._market_now(i, p)
            ctx.prices[i] = p
            ctx.funding[i] = index
            ctx.vol_mmf[i] = vmmf
    return ctx


@internal
@view
def _mm(market_id: uint256, notional: uint256, vol_mmf: uint256) -> uint256:
    """
    @dev Maintenance requirement: sum over brackets of the notional inside each times
         max(bracket mmf, vol_mmf), rounded up. Reads only the brackets the notional reaches.
    @param market_id The market.
    @param notional WAD USD.
    @param vol_mmf The volatility floor.
    @return uint256 WAD USD.
    """
    total: uint256 = 0
    lower: uint256 = 0
    for i: uint256 in range(MAX_BRACKETS):
        w: uint256 = self._brackets[market_id][i]
        cap: uint256 = w >> 96
        total += (min(notional, cap) - lower) * max(w & M96, vol_mmf)
        if notional <= cap or cap == INF_CAP:
            break
        lower = cap
    return fm._ceil_div_u(total, WAD)


@internal
@view
def _state(base: int256, account: address, mask: uint256, ctx: Ctx, with_initial: bool) -> AccountState:
    """
    @dev Equity and requirements of a set of an account's positions at the figures of ctx.
    @param base Cross collateral, or an isolated position's margin.
    @param account The account.
    @param mask The positions (low 16 bits).
    @param ctx Figures of (at least) those markets.
    @param with_initial Whether to compute the initial requirement too.
    @return AccountState The state.
    """
    st: AccountState = AccountState(equity=base, maintenance=0, initial=0, penalty_base=0, positions=0)
    for i: uint256 in range(MAX_MARKETS):
        if mask >> i == 0:
            break
        if (mask >> i) & 1 == 0:
            continue
        pos: Pos = self._positions[account][i]
        p: uint256 = ctx.prices[i]
        notional: uint256 = fm._ceil_div_u(fm._abs(pos.size) * p, WAD)
        st.equity += (
            fm._floor_div(pos.size * convert(p, int256), IWAD)
            - pos.cost
            - fm._ceil_div(pos.size * (ctx.funding[i] - pos.funding), IWAD)
        )
        mm: uint256 = self._mm(i, notional, ctx.vol_mmf[i])
        st.maintenance += mm
        st.positions += 1
        if with_initial:
            st.initial += max(
                fm._wmul_up(notional, self._markets[i].params.imf),
                fm._wmul_up(mm, self._markets[i].params.im_multiplier),
            )
        else:
            st.penalty_base += fm._wmul_up(notional, self._hot[i] >> 192)
    return st


@internal
@view
def _health(account: address, mask: uint256, ctx: Ctx) -> IMarginEngine.Health:
    """
    @dev Cross health of an account, liquidatable when cross or any isolated position is.
    @param account The account.
    @param mask Its mask.
    @param ctx Figures of (at least) its markets.
    @return IMarginEngine.Health Its health.
    """
    iso: uint256 = mask >> ISO
    cross: uint256 = mask & LOW & ~iso
    st: AccountState = self._state(self.collateral[account], account, cross, ctx, True)
    liquidatable: bool = cross != 0 and st.equity < convert(st.maintenance, int256)
    for i: uint256 in range(MAX_MARKETS):
        if liquidatable or iso >> i == 0:
            break
        if (iso >> i) & 1 == 1:
            s: AccountState = self._state(self._positions[account][i].margin, account, 1 << i, ctx, False)
            liquidatable = s.equity < convert(s.maintenance, int256)
    return IMarginEngine.Health(
        equity=st.equity,
        initial_req=st.initial,
        maintenance_req=st.maintenance,
        liquidatable=liquidatable,
    )


@internal
def _update_mask(account: address, market_id: uint256, has_position: bool, isolated: bool) -> uint256:
    """
    @dev Sets or clears a market's bits and keeps the account list in step.
    @param account The account.
    @param market_id The market.
    @param has_position Whether the account now holds a position there.
    @param isolated Whether that position is isolated.
    @return uint256 The new mask.
    """
    old: uint256 = self.position_mask[account]
    new: uint256 = old & ~((1 << market_id) | (1 << (ISO + market_id)))
    if has_position:
        new |= 1 << market_id
        if isolated:
            new |= 1 << (ISO + market_id)
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
@view
def _unit(account: address, mask: uint256, which: uint256) -> (uint256, int256):
    """
    @dev The positions a liquidation of `which` covers and what they stand on: the cross positions
         and cross collateral (which == CROSS), or one isolated position and its margin.
    @param account The account.
    @param mask Its mask.
    @param which CROSS or a market id.
    @return (uint256, int256) Their bits (0 when none) and the collateral or margin.
    """
    if which == CROSS:
        return mask & LOW & ~(mask >> ISO), self.collateral[account]
    if (mask >> (ISO + which)) & 1 == 0:
        return 0, 0
    return 1 << which, self._positions[account][which].margin


@internal
def _liquidate_one(account: address, which: uint256) -> uint256:
    """
    @dev `liquidate` (which == CROSS) and `liquidate_isolated`: reverts unless liquidatable.
    @param account The account.
    @param which CROSS or the isolated position's market.
    @return uint256 The reward paid to the caller, WAD USD.
    """
    mask: uint256 = self.position_mask[account]
    bits: uint256 = 0
    base: int256 = 0
    bits, base = self._unit(account, mask, which)
    self._req(bits != 0, "engine: not liquidatable")
    ctx: Ctx = self._load_touch(bits, empty(Ctx))
    st: AccountState = self._state(base, account, bits, ctx, False)
    self._req(st.equity < convert(st.maintenance, int256), "engine: not liquidatable")
    reward: uint256 = 0
    pool_delta: int256 = 0
    reward, pool_delta = self._liquidate(account, mask, bits, ctx, st, which)
    self._settle_pool(pool_delta)
    return self._pay_reward(reward)


@internal
def _liquidate(account: address, mask: uint256, bits: uint256, ctx: Ctx, st: AccountState, which: uint256) -> (uint256, int256):
    """
    @dev Liquidates the cross positions (which == CROSS) or one isolated position (which = its
         market) of an account below maintenance (docs/margin-math.md, Liquidation).
    @param account The account.
    @param mask Its mask.
    @param bits The positions liquidated.
    @param ctx Figures of their markets.
    @param st Their state at those figures.
    @param which CROSS, or the isolated position's market.
    @return (uint256, int256) The reward owed to the caller (WAD) and what the pool gains (WAD).
    """
    liq: uint256 = self._liq
    fraction: uint256 = WAD
    if st.equity > 0:
        target: int256 = convert(fm._wmul_up(st.maintenance, liq & M64), int256)
        den: int256 = target - convert(st.penalty_base, int256)
        if den > 0:
            num: int256 = target - st.equity + convert(LIQ_SLACK * st.positions, int256)
            f: int256 = fm._ceil_div(num * IWAD, den)
            if f < IWAD:
                fraction = convert(f, uint256)

    # what the liquidated positions stand on: cross collateral or the isolated margin
    coll: int256 = 0
    if which == CROSS:
        coll = self.collateral[account]
    else:
        coll = self._positions[account][which].margin
    realized: int256 = 0
    closed_notional: uint256 = 0
    penalty: uint256 = 0
    equity_left: int256 = 0
    left: uint256 = bits
    for i: uint256 in range(MAX_MARKETS):
        if bits >> i == 0:
            break
        if (bits >> i) & 1 == 0:
            continue
        pos: Pos = self._positions[account][i]
        p: uint256 = ctx.prices[i]
        size_abs: uint256 = fm._abs(pos.size)
        close_abs: uint256 = size_abs
        if fraction < WAD:
            close_abs = min(fm._wmul_up(size_abs, fraction), size_abs)
            if fm._ceil_div_u((size_abs - close_abs) * p, WAD) < self._hot2[i] & M96:
                close_abs = size_abs
        closed: int256 = convert(close_abs, int256)
        oi: uint256 = self._oi[i]
        if pos.size < 0:
            closed = -closed
            self._oi[i] = oi - close_abs
        else:
            self._oi[i] = oi - (close_abs << 128)
        new_size: int256 = 0
        new_cost: int256 = 0
        r: int256 = 0
        new_size, new_cost, r = self._reduce(pos.size, pos.cost, closed, p)
        # the closed part's funding is settled; the rest keeps its entry
        fund: int256 = fm._ceil_div(closed * (ctx.funding[i] - pos.funding), IWAD)
        realized += r - fund
        n: uint256 = fm._ceil_div_u(close_abs * p, WAD)
        closed_notional += n
        penalty += fm._wmul_up(n, self._hot[i] >> 192)
        if new_size == 0:
            self._positions[account][i] = empty(Pos)
            left &= ~(1 << i)
        else:
            self._positions[account][i].size = new_size
            self._positions[account][i].cost = new_cost
            equity_left += (
                fm._floor_div(new_size * convert(p, int256), IWAD)
                - new_cost
                - fm._ceil_div(new_size * (ctx.funding[i] - pos.funding), IWAD)
            )
        log IMarginEngine.PositionLiquidated(
            account=account, market_id=i, size_closed=closed, price=p, realized_pnl=r, funding=fund
        )

    coll += realized
    bad_debt: uint256 = 0
    if left == 0 and coll < 0:
        bad_debt = convert(-coll, uint256)
        coll = 0
    equity_left += coll
    paid: uint256 = 0
    if equity_left > 0:
        paid = min(penalty, convert(equity_left, uint256))
    coll -= convert(paid, int256)
    if which == CROSS:
        self.collateral[account] = coll
    elif left == 0:
        # the isolated position is closed: what is left of its margin returns to cross collateral
        self.collateral[account] += coll
    else:
        self._positions[account][which].margin = coll

    # clamp, then never more than the penalty (a small partial close must not pay its own
    # liquidator) nor more than the account paid but for the floor: insurance tops a reward up to
    # min_keeper_reward at most, so liquidating yourself gains at most that floor
    reward_floor: uint256 = ((liq >> 128) & M64) * PRICE_UNIT
    reward: uint256 = min(
        min(max(min(penalty * ((liq >> 64) & M64) // WAD, (liq >> 192) * PRICE_UNIT), reward_floor), penalty),
        max(paid, reward_floor),
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

    if left != bits:
        cleared: uint256 = bits & ~left
        new_mask: uint256 = mask & ~(cleared | (cleared << ISO))
        self.position_mask[account] = new_mask
        if new_mask == 0:
            self._unlist_account(account)
    if left == 0:
        fraction = WAD
    log IMarginEngine.Liquidation(
        account=account,
        liquidator=msg.sender,
        fraction=fraction,
        closed_notional=closed_notional,
        penalty=penalty,
        penalty_paid=paid,
        reward=reward,
        full=left == 0,
        isolated_market=which,
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
    self._req(extcall _TOKEN.transferFrom(sender, self, amount, default_return_value=True), "engine: transfer failed")
    return staticcall _TOKEN.balanceOf(self) - before


@internal
def _push(receiver: address, amount: uint256):
    """
    @dev Sends tokens.
    @param receiver The receiver.
    @param amount Token units.
    """
    self._req(extcall _TOKEN.transfer(receiver, amount, default_return_value=True), "engine: transfer failed")


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
         `pool_owed` and is paid from what the pool gains later. Works on the biased value.
    @param delta WAD the pool gains from this operation.
    """
    b: uint256 = self._pool_owed_biased
    if delta >= 0:
        b += convert(delta, uint256)
    else:
        b -= convert(-delta, uint256)
    if b >= OWED_BIAS:
        tokens: uint256 = (b - OWED_BIAS) // _SCALE
        if tokens != 0:
            self._push(pool, tokens)
            b -= tokens * _SCALE
    else:
        need: uint256 = fm._ceil_div_u(OWED_BIAS - b, _SCALE)
        before: uint256 = staticcall _TOKEN.balanceOf(self)
        extcall IRiskPool(pool).pay(need)
        # credit what arrived, not what the pool says it sent (a fee-on-transfer token)
        got: uint256 = staticcall _TOKEN.balanceOf(self) - before
        b += got * _SCALE
        if got < need:
            log IMarginEngine.PoolShortfall(amount=OWED_BIAS - b)
    self._pool_owed_biased = b
