# pragma version ~=0.4.3
"""
@title Ballast volatility estimate
@notice A time-weighted EWMA of the variance rate of oracle returns, and the maintenance fraction it
        implies: vol_mmf = z * sigma * sqrt(horizon).
@dev Each new price read at time t, after the last at t0 (dt = t - t0 > 0), with simple return r:
         decay = exp(-dt / tau);  var = var * decay + (1 - decay) * r^2 / dt
     The weights multiply over time, so reading an unchanged price n times over an interval decays
     var exactly as one read at its end does (exp(-a) * exp(-b) == exp(-(a + b))): frequent reads
     cannot wash a crash out faster than time does. A move seen over a short dt adds about r^2 / tau
     whatever dt is; over dt >> tau, var becomes the interval's own rate r^2 / dt.
     Units: var is WAD fraction^2 per second; sigma = sqrt(var) per sqrt(second).
"""

from snekmate.utils import math

WAD: constant(uint256) = 10**18
IWAD: constant(int256) = 10**18


@internal
@pure
def _next_var(var: uint256, last_price: uint256, last_time: uint256, price: uint256, now: uint256, tau: uint256) -> uint256:
    """
    @dev The variance rate after a price read; unchanged when no time has passed or there is no
         previous price.
    @param var The current variance rate, WAD per second.
    @param last_price The previous price read (0 when none).
    @param last_time Its time.
    @param price The new price (> 0).
    @param now The new time.
    @param tau The EWMA time constant, seconds (> 0).
    @return uint256 The new variance rate.
    """
    if last_price == 0 or now <= last_time:
        return var
    dt: uint256 = now - last_time
    diff: uint256 = price - last_price if price > last_price else last_price - price
    r2: uint256 = diff * diff * WAD // (last_price * last_price)  # r^2 in WAD
    decay: uint256 = convert(math._wad_exp(-convert(dt * WAD // tau, int256)), uint256)
    return (var * decay + (WAD - decay) * (r2 // dt)) // WAD


@internal
@pure
def _vol_mmf(var: uint256, z: uint256, horizon: uint256) -> uint256:
    """
    @dev z * sigma * sqrt(horizon), WAD, rounded up (it is a requirement).
    @param var The variance rate, WAD per second.
    @param z The multiplier, WAD.
    @param horizon Seconds.
    @return uint256 The volatility maintenance fraction, WAD.
    """
    root: uint256 = isqrt(var * horizon * WAD)
    if root * root < var * horizon * WAD:
        root += 1
    return (z * root + WAD - 1) // WAD
