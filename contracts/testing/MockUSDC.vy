# pragma version ~=0.4.3
"""
@title Mock USDC
@custom:contract-name MockUSDC
@license MIT
@notice A 6-decimal token with a USDC-like blacklist: any transfer from or
        to a blacklisted account, any transfer initiated by one and any
        approve by or to one reverts with "Blacklistable: account is
        blacklisted". Functions return bool as usual.
@dev Testing only. Anyone may mint and (un)blacklist.
@custom:kill Nothing can be stopped; it is a mock.
"""


from ethereum.ercs import IERC20
implements: IERC20


# @dev The token decimals, as on mainnet.
decimals: public(constant(uint8)) = 6

# @dev The token name.
name: public(constant(String[25])) = "USD Coin"

# @dev The token symbol.
symbol: public(constant(String[5])) = "USDC"


# STORAGE #


# @dev Balance of each account.
balanceOf: public(HashMap[address, uint256])

# @dev Allowance of each (owner, spender) pair.
allowance: public(HashMap[address, HashMap[address, uint256]])

# @dev Tokens in existence.
totalSupply: public(uint256)

# @dev Whether an account is blacklisted.
is_blacklisted: public(HashMap[address, bool])


# EVENTS #


event Blacklisted:
    account: indexed(address)


event UnBlacklisted:
    account: indexed(address)


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` from the caller to `to`.
    @param to The receiver.
    @param amount The amount.
    @return bool Always True (failures revert).
    """
    self._not_blacklisted(msg.sender)
    self._not_blacklisted(to)
    self._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Moves `amount` from `owner` to `to` using the caller's allowance.
    @dev An allowance of max_value(uint256) is not decreased.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    @return bool Always True (failures revert).
    """
    self._not_blacklisted(msg.sender)
    self._not_blacklisted(owner)
    self._not_blacklisted(to)
    allowed: uint256 = self.allowance[owner][msg.sender]
    assert allowed >= amount, "usdc: insufficient allowance"
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
    @return bool Always True (failures revert).
    """
    self._not_blacklisted(msg.sender)
    self._not_blacklisted(spender)
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def mint(to: address, amount: uint256):
    """
    @notice Mints `amount` to `to`; anyone may call it.
    @dev Reverts if `to` is blacklisted, as USDC does.
    @param to The receiver.
    @param amount The amount.
    """
    self._not_blacklisted(to)
    self.totalSupply += amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@external
def blacklist(account: address):
    """
    @notice Blacklists `account`; anyone may call it.
    @param account The account to freeze.
    """
    self.is_blacklisted[account] = True
    log Blacklisted(account=account)


@external
def unblacklist(account: address):
    """
    @notice Lifts the blacklist on `account`; anyone may call it.
    @param account The account to unfreeze.
    """
    self.is_blacklisted[account] = False
    log UnBlacklisted(account=account)


@internal
@view
def _not_blacklisted(account: address):
    """
    @dev Reverts if `account` is blacklisted.
    @param account The account to check.
    """
    assert not self.is_blacklisted[account], "Blacklistable: account is blacklisted"


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves balance; reverts with "usdc: insufficient balance".
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    """
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "usdc: insufficient balance"
    self.balanceOf[owner] = unsafe_sub(balance, amount)
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
