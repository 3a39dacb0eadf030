# pragma version ~=0.4.3
"""
@title Ballast maintenance brackets
@notice Maintenance requirement as a continuous, piecewise-linear function of notional, as on large
        exchanges: each bracket's fraction applies only to the part of the notional inside it, so
        there is no jump at a bracket edge and a bigger position never needs less margin.
@dev MM(N) = ceil(sum over brackets of (part of N inside the bracket) * max(mmf_b, vol_mmf) / WAD).
     Brackets ascend in notional cap and in mmf, which makes MM convex: MM(N) / N never falls, so
     closing a fraction f of a position frees at least f of its requirement.
"""

WAD: constant(uint256) = 10**18
MAX_BRACKETS: constant(uint256) = 8


struct Bracket:
    cap: uint256  # upper edge of the bracket, WAD USD notional; max_value for the last
    mmf: uint256  # maintenance fraction inside it, WAD


@internal
@pure
def _maintenance(notional: uint256, brackets: DynArray[Bracket, MAX_BRACKETS], vol_mmf: uint256) -> uint256:
    """
    @dev The maintenance requirement of a notional, rounded up.
    @param notional WAD USD.
    @param brackets The market's brackets, checked by `_check`.
    @param vol_mmf The volatility floor of every bracket's fraction, WAD.
    @return uint256 WAD USD.
    """
    total: uint256 = 0
    lower: uint256 = 0
    for b: Bracket in brackets:
        if notional <= lower:
            break
        part: uint256 = min(notional, b.cap) - lower
        total += part * max(b.mmf, vol_mmf)
        lower = b.cap
    return (total + WAD - 1) // WAD


@internal
@pure
def _check(brackets: DynArray[Bracket, MAX_BRACKETS], min_mmf: uint256, max_mmf: uint256):
    """
    @dev Reverts unless there are 1 to 8 brackets with strictly rising caps, the last one unbounded,
         and fractions that never fall, within [min_mmf, max_mmf].
    @param brackets The brackets.
    @param min_mmf The hard lower bound of a fraction.
    @param max_mmf The hard upper bound of a fraction.
    """
    n: uint256 = len(brackets)
    assert n != 0, "brackets: empty"
    assert brackets[n - 1].cap == max_value(uint256), "brackets: last cap"
    lower: uint256 = 0
    mmf: uint256 = 0
    for b: Bracket in brackets:
        assert b.cap > lower, "brackets: caps must rise"
        assert b.mmf >= mmf, "brackets: mmf must not fall"
        assert b.mmf >= min_mmf and b.mmf <= max_mmf, "brackets: mmf out of bounds"
        lower = b.cap
        mmf = b.mmf
