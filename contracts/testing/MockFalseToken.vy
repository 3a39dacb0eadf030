# pragma version ~=0.4.3
"""
@title Mock token that can answer `false`
@custom:contract-name MockFalseToken
@license MIT
@notice A 6-decimal ERC-20 whose `transfer` and `transferFrom` return False, moving nothing, while
        `refuse` is set: the old-token failure mode that callers must check.
@dev Testing only.
@custom:kill Nothing can be stopped; it is a mock.
"""

from ethereum.ercs import IERC20

implements: IERC20

decimals: public(constant(uint8)) = 6
name: public(constant(String[25])) = "False USD"
symbol: public(constant(String[5])) = "FUSD"

# STORAGE #

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)
# @dev While True, transfers return False and move nothing.
refuse: public(bool)


@external
def set_refuse(refuse_: bool):
    """
    @notice Makes transfers answer False (True) or work (False).
    @param refuse_ The new mode.
    """
    self.refuse = refuse_


@external
def mint(to: address, amount: uint256):
    """
    @notice Creates tokens for anyone (a mock).
    @param to The receiver.
    @param amount The amount.
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log IERC20.Transfer(sender=empty(address), receiver=to, value=amount)


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice Sets an allowance.
    @param spender The spender.
    @param amount The allowance.
    @return bool True.
    """
    self.allowance[msg.sender][spender] = amount
    log IERC20.Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice Moves tokens, or answers False while `refuse` is set.
    @param to The receiver.
    @param amount The amount.
    @return bool Whether it moved them.
    """
    if self.refuse:
        return False
    self._move(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Moves tokens with an allowance, or answers False while `refuse` is set.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    @return bool Whether it moved them.
    """
    if self.refuse:
        return False
    self.allowance[owner][msg.sender] -= amount
    self._move(owner, to, amount)
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    """
    @dev Debits and credits.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    """
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)
