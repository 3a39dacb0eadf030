# pragma version ~=0.4.3
"""
@title Mock FiatToken (USDC) implementation, for use behind a proxy
@custom:contract-name MockFiatToken
@license MIT
@notice A 6-decimal token with the parts of Circle's FiatToken interface the
        fork tests use: a blacklister role (`blacklister()`), `blacklist` and
        `unBlacklist` callable only by it, `isBlacklisted`, and the
        "Blacklistable: ..." revert reasons. The fork suite's local upstream
        runs it behind a delegatecall proxy at USDC's address, as real USDC
        is, so that the same test code works against both.
@dev Testing only. There is no mint: tests give balances by writing storage
     (tests/fork deal). `initialize` replaces a constructor because a proxy
     does not run one; it can be called once.
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

# @dev The only account that may (un)blacklist.
blacklister: public(address)

# @dev Set by `initialize`.
initialized: public(bool)

# @dev Whether an account is blacklisted.
_blacklisted: HashMap[address, bool]


# EVENTS #


event Blacklisted:
    account: indexed(address)


event UnBlacklisted:
    account: indexed(address)


@external
def initialize(blacklister_: address):
    """
    @notice Sets the blacklister; callable once.
    @param blacklister_ The blacklister role.
    """
    assert not self.initialized, "FiatToken: contract is already initialized"
    assert blacklister_ != empty(address), "FiatToken: new blacklister is the zero address"
    self.initialized = True
    self.blacklister = blacklister_


@external
@view
def isBlacklisted(account: address) -> bool:
    """
    @notice Whether `account` is blacklisted.
    @param account The account.
    @return bool True if blacklisted.
    """
    return self._blacklisted[account]


@external
def blacklist(account: address):
    """
    @notice Blacklists `account`; only the blacklister may.
    @param account The account to freeze.
    """
    assert msg.sender == self.blacklister, "Blacklistable: caller is not the blacklister"
    self._blacklisted[account] = True
    log Blacklisted(account=account)


@external
def unBlacklist(account: address):
    """
    @notice Lifts the blacklist on `account`; only the blacklister may.
    @param account The account to unfreeze.
    """
    assert msg.sender == self.blacklister, "Blacklistable: caller is not the blacklister"
    self._blacklisted[account] = False
    log UnBlacklisted(account=account)


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
    assert allowed >= amount, "ERC20: transfer amount exceeds allowance"
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


@internal
@view
def _not_blacklisted(account: address):
    """
    @dev Reverts if `account` is blacklisted.
    @param account The account to check.
    """
    assert not self._blacklisted[account], "Blacklistable: account is blacklisted"


@internal
def _transfer(owner: address, to: address, amount: uint256):
    """
    @dev Moves balance; reverts like FiatToken on a short balance.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    """
    assert to != empty(address), "ERC20: transfer to the zero address"
    balance: uint256 = self.balanceOf[owner]
    assert balance >= amount, "ERC20: transfer amount exceeds balance"
    self.balanceOf[owner] = unsafe_sub(balance, amount)
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
