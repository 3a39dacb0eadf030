# pragma version ~=0.4.3
"""
@title Mock fee-on-transfer token
@custom:contract-name MockFeeToken
@license MIT
@notice A token that burns 1% (rounded down) of every `transfer` and
        `transferFrom`: the receiver gets `amount - amount // 100`. Used to
        prove that the protocol accounts for what it actually receives.
@dev Testing only. Minting is open to anyone and charges no fee.
@custom:kill Nothing can be stopped; it is a mock.
"""


from ethereum.ercs import IERC20
implements: IERC20


# CONSTANTS #


# @dev The fee, in basis points of the amount moved.
FEE_BPS: public(constant(uint256)) = 100

# @dev The basis-point denominator.
_BPS: constant(uint256) = 10_000

# @dev The token name.
name: public(constant(String[25])) = "Fee Token"

# @dev The token symbol.
symbol: public(constant(String[5])) = "FEE"


# IMMUTABLES #


# @dev The token decimals (18 or 6 in the tests).
decimals: public(immutable(uint8))


# STORAGE #


# @dev Balance of each account.
balanceOf: public(HashMap[address, uint256])

# @dev Allowance of each (owner, spender) pair.
allowance: public(HashMap[address, HashMap[address, uint256]])

# @dev Tokens in existence (falls with every fee burnt).
totalSupply: public(uint256)


@deploy
def __init__(decimals_: uint8):
    """
    @notice Deploys the token.
    @param decimals_ The token decimals.
    """
    decimals = decimals_


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` from the caller; `to` receives 99% of it.
    @param to The receiver.
    @param amount The amount debited from the caller.
    @return bool Always True (failures revert).
    """
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` from `owner` using the caller's allowance; `to`
            receives 99% of it.
    @dev An allowance of max_value(uint256) is not decreased.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount debited from `owner`.
    @return bool Always True (failures revert).
    """
    allowed: uint256 = self.allowance[owner][msg.sender]
    assert allowed >= amount, "fee token: insufficient allowance"
    if allowed != max_value(uint256):
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, to, amount)
    return True


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Sets the caller's allowance for `spender`.
    @param spender The spender.
    @param amount The allowance.
    @return bool Always True.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints `amount` to `to` without a fee; anyone may call it.
    @param to The receiver.
    @param amount The amount.
    """
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Debits `amount`, credits `amount - fee` and burns the fee.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount debited.
    """
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "fee token: insufficient balance"
    fee: uint256 = amount * FEE_BPS // _BPS
    received: uint256 = amount - fee
    self.balanceOf[owner] = unsafe_sub(balance, amount)
    self.balanceOf[to] += received
    self.totalSupply -= fee
    log IERC20.Transfer(sender=owner, receiver=to, value=received)
    log IERC20.Transfer(sender=owner, receiver=empty(address), value=fee)
