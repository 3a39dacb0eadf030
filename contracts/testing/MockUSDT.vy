# pragma version ~=0.4.3
"""
@title Mock USDT
@custom:contract-name MockUSDT
@license MIT
@notice A 6-decimal token whose `transfer`, `transferFrom` and `approve`
        return nothing, like mainnet USDT. Callers that expect a bool from
        these functions fail against it; safe-transfer wrappers must cope.
@dev Testing only. Failures revert (they never return false).
@custom:kill Nothing can be stopped; it is a mock.
"""


# @dev The token decimals, as on mainnet.
decimals: public(constant(uint8)) = 6

# @dev The token name.
name: public(constant(String[25])) = "Tether USD"

# @dev The token symbol.
symbol: public(constant(String[5])) = "USDT"


# STORAGE #


# @dev Balance of each account.
balanceOf: public(HashMap[address, uint256])

# @dev Allowance of each (owner, spender) pair.
allowance: public(HashMap[address, HashMap[address, uint256]])

# @dev Tokens in existence.
totalSupply: public(uint256)


# EVENTS #


event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256


event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256


@external
def transfer(to: address, amount: uint256):
    """
    @notice Moves `amount` from the caller to `to`.
    @dev Returns no data.
    @param to The receiver.
    @param amount The amount.
    """
    self._transfer(msg.sender, to, amount)


@external
def transferFrom(owner: address, to: address, amount: uint256):
    """
    @notice Moves `amount` from `owner` to `to` using the caller's allowance.
    @dev Returns no data. An allowance of max_value(uint256) is not decreased.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    """
    allowed: uint256 = self.allowance[owner][msg.sender]
    assert allowed >= amount, "usdt: insufficient allowance"
    if allowed != max_value(uint256):
        self.allowance[owner][msg.sender] = allowed - amount
    self._transfer(owner, to, amount)


@external
def approve(spender: address, amount: uint256):
    """
    @notice Sets the caller's allowance for `spender`.
    @dev Returns no data.
    @param spender The spender.
    @param amount The allowance.
    """
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints `amount` to `to`; anyone may call it.
    @param to The receiver.
    @param amount The amount.
    """
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves balance; reverts with "usdt: insufficient balance".
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    """
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "usdt: insufficient balance"
    self.balanceOf[owner] = unsafe_sub(balance, amount)
    self.balanceOf[to] += amount
    log Transfer(sender=owner, receiver=to, value=amount)
