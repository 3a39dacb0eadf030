# pragma version ~=0.4.3
"""
@title Volatility module harness
@notice Exposes contracts/modules/volatility.vy for tests and for the crash chart in docs/: one call
        replays a whole price series.
@dev Testing only.
"""

from ..modules import volatility

MAX_POINTS: constant(uint256) = 2000


@external
@pure
def next_var(var: uint256, last_price: uint256, last_time: uint256, price: uint256, now: uint256, tau: uint256) -> uint256:
    """
    @notice One update of the variance rate.
    """
    return volatility._next_var(var, last_price, last_time, price, now, tau)


@external
@pure
def vol_mmf(var: uint256, z: uint256, horizon: uint256) -> uint256:
    """
    @notice z * sigma * sqrt(horizon).
    """
    return volatility._vol_mmf(var, z, horizon)


@external
@pure
def replay(
    prices: DynArray[uint256, MAX_POINTS], times: DynArray[uint256, MAX_POINTS], tau: uint256, z: uint256, horizon: uint256
) -> (DynArray[uint256, MAX_POINTS], DynArray[uint256, MAX_POINTS]):
    """
    @notice The variance rate and the volatility maintenance fraction after each read of a series.
    """
    assert len(prices) == len(times), "harness: lengths"
    vars: DynArray[uint256, MAX_POINTS] = []
    mmfs: DynArray[uint256, MAX_POINTS] = []
    var: uint256 = 0
    last_price: uint256 = 0
    last_time: uint256 = 0
    for i: uint256 in range(len(prices), bound=MAX_POINTS):
        var = volatility._next_var(var, last_price, last_time, prices[i], times[i], tau)
        if times[i] > last_time or last_price == 0:
            last_price = prices[i]
            last_time = times[i]
        vars.append(var)
        mmfs.append(volatility._vol_mmf(var, z, horizon))
    return vars, mmfs
