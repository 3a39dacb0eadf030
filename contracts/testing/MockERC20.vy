# pragma version ~=0.4.3
"""
@title Mock ERC-20 token
@custom:contract-name MockERC20
@license MIT
@notice A plain snekmate ERC-20 with any decimals (used with 6, 8 and 18)
        whose `mint` is open to anyone.
@dev Testing only.
@custom:kill Nothing can be stopped; it is a mock.
"""


from ethereum.ercs import IERC20
implements: IERC20


# @dev snekmate's erc20 `uses` ownable, so this contract must initialise it.
from snekmate.auth import ownable
initializes: ownable

# @dev The token logic itself; ownable is handed to it.
from snekmate.tokens import erc20
initializes: erc20[ownable := ownable]


# @dev The standard ERC-20 surface plus permit. snekmate's restricted `mint`
# is not exported: the open `mint` below replaces it.
exports: (
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
    erc20.burn,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
)


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    """
    @notice Deploys the token.
    @param name_ The token name.
    @param symbol_ The token symbol.
    @param decimals_ The token decimals.
    """
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints `amount` to `to`; anyone may call it.
    @param to The receiver.
    @param amount The amount, in token units.
    """
    erc20._mint(to, amount)
