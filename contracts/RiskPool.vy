# pragma version ~=0.4.3
# pragma nonreentrancy on
"""
@title Ballast RiskPool
@notice The liquidity pool that is every trader's counterparty: an ERC-4626 vault over the
        collateral token whose assets move with trader PnL, fees and liquidations.
@dev Built on snekmate's erc4626 with a decimals offset against first-depositor share inflation.
     The engine settles with the pool in whole tokens (`pay` takes tokens out; the engine sends
     tokens in with a plain transfer), so totalAssets() is the pool's token balance.
@custom:kill The engine's `paused_open` blocks LP deposits and mints. Withdrawals and redemptions
             are never paused; they are limited to the assets above the engine's reserve.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC4626

from snekmate.extensions import erc4626

from interfaces import IMarginEngine

implements: IERC20
implements: IERC4626

# @dev The vault: shares, conversions and the deposit/withdraw workflow.
initializes: erc4626

exports: (
    erc4626.erc20.totalSupply,
    erc4626.erc20.balanceOf,
    erc4626.erc20.transfer,
    erc4626.erc20.transferFrom,
    erc4626.erc20.approve,
    erc4626.erc20.allowance,
    erc4626.erc20.name,
    erc4626.erc20.symbol,
    erc4626.erc20.decimals,
    erc4626.asset,
)


# STORAGE #

# @dev The engine allowed to take tokens with `pay`; set once by the deployer.
engine: public(address)

# @dev The deployer, who may set the engine once.
_DEPLOYER: immutable(address)

_ASSET: immutable(IERC20)


event EngineSet:
    engine: indexed(address)


event Paid:
    engine: indexed(address)
    amount: uint256  # token units


@deploy
def __init__(asset_: address, decimals_offset: uint8, name_: String[25], symbol_: String[5]):
    """
    @notice Deploys the pool over `asset_`.
    @param asset_ The collateral token.
    @param decimals_offset Extra share decimals against share inflation (6 recommended for USDC).
    @param name_ Share token name.
    @param symbol_ Share token symbol.
    """
    assert asset_ != empty(address), "pool: zero address"
    assert decimals_offset <= 18, "pool: decimals offset"
    erc4626.__init__(name_, symbol_, IERC20(asset_), decimals_offset, name_, "1")
    _DEPLOYER = msg.sender
    _ASSET = IERC20(asset_)


@external
def set_engine(engine_: address):
    """
    @notice Names the engine, once. Deployer only.
    @param engine_ The MarginEngine over the same token.
    """
    assert msg.sender == _DEPLOYER, "pool: not deployer"
    assert self.engine == empty(address), "pool: engine already set"
    assert engine_ != empty(address), "pool: zero address"
    assert staticcall IMarginEngine(engine_).collateral_token() == _ASSET.address, "pool: engine token"
    self.engine = engine_
    log EngineSet(engine=engine_)


@external
def pay(amount: uint256) -> uint256:
    """
    @notice Sends up to `amount` tokens to the engine, for trader profits and write-offs.
    @dev Engine only. Never reverts for lack of assets: it sends what it has and returns it.
    @param amount Token units asked for.
    @return uint256 Token units sent.
    """
    assert msg.sender == self.engine, "pool: not engine"
    sent: uint256 = min(amount, staticcall _ASSET.balanceOf(self))
    if sent != 0:
        assert extcall _ASSET.transfer(msg.sender, sent, default_return_value=True), "pool: transfer failed"
    log Paid(engine=msg.sender, amount=sent)
    return sent


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @notice 0 while opening is paused, otherwise unlimited.
    @param receiver Unused.
    @return uint256 The largest deposit.
    """
    if self._deposits_paused():
        return 0
    return max_value(uint256)


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @notice 0 while opening is paused, otherwise unlimited.
    @param receiver Unused.
    @return uint256 The largest mint.
    """
    if self._deposits_paused():
        return 0
    return max_value(uint256)


@external
def deposit(assets: uint256, receiver: address = msg.sender) -> uint256:
    """
    @notice Deposits assets for shares.
    @param assets Token units.
    @param receiver Who gets the shares.
    @return uint256 Shares minted.
    """
    assert not self._deposits_paused(), "pool: deposits paused"
    assert assets != 0, "pool: zero amount"
    shares: uint256 = erc4626._preview_deposit(assets)
    assert shares != 0, "pool: zero shares"
    self._deposit_exact(receiver, assets, shares)
    return shares


@external
def mint(shares: uint256, receiver: address = msg.sender) -> uint256:
    """
    @notice Mints exact shares for assets.
    @param shares Shares wanted.
    @param receiver Who gets the shares.
    @return uint256 Token units taken.
    """
    assert not self._deposits_paused(), "pool: deposits paused"
    assert shares != 0, "pool: zero amount"
    assets: uint256 = erc4626._preview_mint(shares)
    self._deposit_exact(receiver, assets, shares)
    return assets


@external
@view
def free_assets() -> uint256:
    """
    @notice Assets above the engine's reserve: what LPs may withdraw in total.
    @return uint256 Token units.
    """
    return self._free_assets()


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @notice The most `owner` can withdraw now: its share, within the free assets.
    @param owner The share owner.
    @return uint256 Token units.
    """
    return min(erc4626._max_withdraw(owner), self._free_assets())


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @notice The most shares `owner` can redeem now, within the free assets.
    @param owner The share owner.
    @return uint256 Shares.
    """
    return min(erc4626._max_redeem(owner), erc4626._convert_to_shares(self._free_assets(), False))


@external
def withdraw(assets: uint256, receiver: address = msg.sender, owner: address = msg.sender) -> uint256:
    """
    @notice Withdraws exact assets, burning shares. Never paused; limited by the reserve.
    @param assets Token units.
    @param receiver Who gets the tokens.
    @param owner Whose shares are burnt.
    @return uint256 Shares burnt.
    """
    assert assets != 0, "pool: zero amount"
    assert assets <= erc4626._max_withdraw(owner), "pool: exceeds balance"
    assert assets <= self._free_assets(), "pool: reserved"
    shares: uint256 = erc4626._preview_withdraw(assets)
    erc4626._withdraw(msg.sender, receiver, owner, assets, shares)
    return shares


@external
def redeem(shares: uint256, receiver: address = msg.sender, owner: address = msg.sender) -> uint256:
    """
    @notice Redeems exact shares for assets. Never paused; limited by the reserve.
    @param shares Shares.
    @param receiver Who gets the tokens.
    @param owner Whose shares are burnt.
    @return uint256 Token units sent.
    """
    assert shares != 0, "pool: zero amount"
    assert shares <= erc4626._max_redeem(owner), "pool: exceeds balance"
    assets: uint256 = erc4626._preview_redeem(shares)
    assert assets <= self._free_assets(), "pool: reserved"
    erc4626._withdraw(msg.sender, receiver, owner, assets, shares)
    return assets


@internal
def _deposit_exact(receiver: address, assets: uint256, shares: uint256):
    """
    @dev The vault's deposit, refusing a token that delivers less than it was asked to move: shares
         priced on `assets` must be backed by `assets`, or existing LPs would pay the transfer fee.
    @param receiver Who gets the shares.
    @param assets Token units pulled.
    @param shares Shares minted.
    """
    before: uint256 = staticcall _ASSET.balanceOf(self)
    erc4626._deposit(msg.sender, receiver, assets, shares)
    assert staticcall _ASSET.balanceOf(self) - before == assets, "pool: transfer fee not supported"


@internal
@view
def _deposits_paused() -> bool:
    """
    @dev The engine's `paused_open` (deposits are open before an engine is set).
    @return bool Whether deposits are paused.
    """
    if self.engine == empty(address):
        return False
    return staticcall IMarginEngine(self.engine).paused_open()


@internal
@view
def _free_assets() -> uint256:
    """
    @dev Assets minus the engine's reserve requirement, floored at zero.
    @return uint256 Token units.
    """
    total: uint256 = erc4626._total_assets()
    if self.engine == empty(address):
        return total
    reserved: uint256 = staticcall IMarginEngine(self.engine).reserve_requirement()
    if reserved >= total:
        return 0
    return total - reserved


# SHARE PRICE VIEWS #
# @dev Defined here rather than exported from snekmate so that `# pragma nonreentrancy on` covers
#      them: inside a deposit the assets have arrived before the shares are minted, and a token
#      with transfer hooks must not be able to read that inflated share price.


@external
@view
def totalAssets() -> uint256:
    """
    @notice The pool's assets: its token balance.
    @return uint256 Token units.
    """
    return erc4626._total_assets()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares worth `assets`, rounded down.
    @param assets Token units.
    @return uint256 Shares.
    """
    return erc4626._convert_to_shares(assets, False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice Assets worth `shares`, rounded down.
    @param shares Shares.
    @return uint256 Token units.
    """
    return erc4626._convert_to_assets(shares, False)


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares a deposit of `assets` mints now.
    @param assets Token units.
    @return uint256 Shares.
    """
    return erc4626._preview_deposit(assets)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @notice Assets a mint of `shares` takes now.
    @param shares Shares.
    @return uint256 Token units.
    """
    return erc4626._preview_mint(shares)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Shares a withdrawal of `assets` burns now.
    @param assets Token units.
    @return uint256 Shares.
    """
    return erc4626._preview_withdraw(assets)


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Assets a redemption of `shares` pays now.
    @param shares Shares.
    @return uint256 Token units.
    """
    return erc4626._preview_redeem(shares)
