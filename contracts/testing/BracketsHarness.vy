# pragma version ~=0.4.3
"""
@title Brackets module harness
@notice Exposes contracts/modules/brackets.vy for tests.
@dev Testing only.
"""

from ..modules import brackets


@external
@pure
def maintenance(notional: uint256, table: DynArray[brackets.Bracket, brackets.MAX_BRACKETS], vol_mmf: uint256) -> uint256:
    """
    @notice The maintenance requirement of a notional.
    """
    return brackets._maintenance(notional, table, vol_mmf)


@external
@pure
def check(table: DynArray[brackets.Bracket, brackets.MAX_BRACKETS], min_mmf: uint256, max_mmf: uint256) -> bool:
    """
    @notice Reverts with the module's reason for a bad table; True otherwise.
    """
    brackets._check(table, min_mmf, max_mmf)
    return True
