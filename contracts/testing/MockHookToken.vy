# pragma version ~=0.4.3
"""
@title Mock token with a transfer callback
@custom:contract-name MockHookToken
@license MIT
@notice A 6-decimal ERC-20 that, once armed, makes one call of its choosing from inside its next
        `transfer` or `transferFrom`, after the balances have moved: what an ERC-777 style hook
        lets a sender or receiver do. The call may fail without failing the transfer; the token
        records whether it succeeded and what it returned, so a test can tell a call refused by a
        reentrancy lock (a bare revert) from one that went through.
@dev Testing only. Minting is open to anyone. The token itself can hold tokens, approve spenders
     and be an account of the engine, so that the hook can deposit, trade or withdraw as itself.
@custom:kill Nothing can be stopped; it is a mock.
"""

from ethereum.ercs import IERC20

implements: IERC20

decimals: public(constant(uint8)) = 6
name: public(constant(String[25])) = "Hook USD"
symbol: public(constant(String[5])) = "HUSD"

# @dev Longest call data and return data the hook keeps.
MAX_DATA: constant(uint256) = 1024

# STORAGE #

balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
totalSupply: public(uint256)

# @dev The call the next transfer makes, while `armed`.
target: public(address)
data: public(Bytes[MAX_DATA])
armed: public(bool)

# @dev Calls made so far (by the hook or by `call_now`), and the outcome of the last one.
calls: public(uint256)
last_ok: public(bool)
last_return: public(Bytes[MAX_DATA])


@external
def arm(target_: address, data_: Bytes[MAX_DATA]):
    """
    @notice Makes the next transfer call `target_` with `data_` (once).
    @param target_ The contract called.
    @param data_ The call data.
    """
    self.target = target_
    self.data = data_
    self.armed = True


@external
def call_now(target_: address, data_: Bytes[MAX_DATA]):
    """
    @notice Makes the same kind of call outside any transfer (the control of a test), recorded
            like a hook call.
    @param target_ The contract called.
    @param data_ The call data.
    """
    self._call(target_, data_)


@external
def approve_from_token(spender: address, amount: uint256):
    """
    @notice Sets the allowance the token contract itself gives `spender`, so that a hook call can
            pay with the token's own balance.
    @param spender The spender.
    @param amount The allowance.
    """
    self.allowance[self][spender] = amount


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
    @notice Moves tokens, then runs the hook if armed.
    @param to The receiver.
    @param amount The amount.
    @return bool True.
    """
    self._move(msg.sender, to, amount)
    self._hook()
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice Moves tokens with an allowance, then runs the hook if armed.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    @return bool True.
    """
    allowed: uint256 = self.allowance[owner][msg.sender]
    assert allowed >= amount, "hook token: insufficient allowance"
    if allowed != max_value(uint256):
        self.allowance[owner][msg.sender] = allowed - amount
    self._move(owner, to, amount)
    self._hook()
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    """
    @dev Debits and credits.
    @param owner The payer.
    @param to The receiver.
    @param amount The amount.
    """
    assert self.balanceOf[owner] >= amount, "hook token: insufficient balance"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log IERC20.Transfer(sender=owner, receiver=to, value=amount)


@internal
def _hook():
    """
    @dev Makes the armed call, once.
    """
    if not self.armed:
        return
    self.armed = False
    self._call(self.target, self.data)


@internal
def _call(target_: address, data_: Bytes[MAX_DATA]):
    """
    @dev Calls `target_` and records the outcome without failing on it.
    @param target_ The contract called.
    @param data_ The call data.
    """
    ok: bool = False
    ret: Bytes[MAX_DATA] = b""
    ok, ret = raw_call(target_, data_, max_outsize=MAX_DATA, revert_on_failure=False)
    self.calls += 1
    self.last_ok = ok
    self.last_return = ret
