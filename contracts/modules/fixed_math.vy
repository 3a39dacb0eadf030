# pragma version ~=0.4.3
"""
@title Ballast fixed-point helpers
@notice Signed and unsigned WAD arithmetic with an explicit rounding direction.
@dev Vyper's signed `//` truncates toward zero; these helpers floor or ceil instead, so that every
     rounding in the engine can go against the account (see docs/margin-math.md).
"""

WAD: constant(uint256) = 10**18
IWAD: constant(int256) = 10**18


@internal
@pure
def _floor_div(a: int256, b: int256) -> int256:
    """
    @dev Floor of a / b for b > 0.
    @param a The signed numerator.
    @param b The positive denominator.
    @return int256 The quotient rounded toward minus infinity.
    """
    q: int256 = a // b
    if a % b != 0 and a < 0:
        q -= 1
    return q


@internal
@pure
def _ceil_div(a: int256, b: int256) -> int256:
    """
    @dev Ceiling of a / b for b > 0.
    @param a The signed numerator.
    @param b The positive denominator.
    @return int256 The quotient rounded toward plus infinity.
    """
    q: int256 = a // b
    if a % b != 0 and a > 0:
        q += 1
    return q


@internal
@pure
def _ceil_div_u(a: uint256, b: uint256) -> uint256:
    """
    @dev Ceiling of a / b for unsigned values, b > 0.
    @param a The numerator.
    @param b The positive denominator.
    @return uint256 The quotient rounded up.
    """
    return (a + b - 1) // b


@internal
@pure
def _wmul_up(a: uint256, b: uint256) -> uint256:
    """
    @dev a * b / WAD rounded up.
    @param a A WAD or base-unit amount.
    @param b A WAD amount.
    @return uint256 The product in the unit of a, rounded up.
    """
    return (a * b + WAD - 1) // WAD


@internal
@pure
def _abs(a: int256) -> uint256:
    """
    @dev Absolute value as an unsigned integer.
    @param a The signed value.
    @return uint256 |a|.
    """
    if a < 0:
        return convert(-a, uint256)
    return convert(a, uint256)
