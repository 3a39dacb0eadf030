"""The volatility module (contracts/modules/volatility.vy) against an independent float model, and its
two promises: reading an unchanged price often decays sigma no faster than time does, and sigma
rises through a real crash and decays after it."""

import math
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from _replay import feed_updates, path_points, read_candles  # noqa: E402

WAD = 10**18
TAU = 4 * 3600
Z = 3 * WAD
HORIZON = 3600
DATA = Path(__file__).resolve().parent.parent / "scripts" / "data"


@pytest.fixture(scope="module")
def vol(project, deployer):
    return project.VolatilityHarness.deploy(sender=deployer)


def model_next_var(var, last_price, last_time, price, now, tau):
    """var * e^(-dt/tau) + (1 - e^(-dt/tau)) * r^2 / dt, in floats (WAD per second)."""
    if last_price == 0 or now <= last_time:
        return var
    dt = now - last_time
    r = (price - last_price) / last_price
    d = math.exp(-dt / tau)
    return var * d + (1 - d) * r * r * WAD / dt


@settings(max_examples=200, deadline=None)
@given(
    var=st.integers(0, 10**14),
    last=st.integers(10**18, 10**23),
    move=st.integers(-500, 500),  # per mille
    dt=st.integers(1, 7 * 86400),
)
def test_next_var__matches_model(vol, var, last, move, dt):
    price = last * (1000 + move) // 1000 or 1
    got = vol.next_var(var, last, 1_000_000, price, 1_000_000 + dt, TAU)
    want = model_next_var(var, last, 1_000_000, price, 1_000_000 + dt, TAU)
    assert got == pytest.approx(want, rel=1e-9, abs=2)


def test_next_var__no_time_or_no_previous_price__unchanged(vol):
    assert vol.next_var(12345, 2000 * WAD, 100, 1000 * WAD, 100, TAU) == 12345
    assert vol.next_var(12345, 0, 0, 1000 * WAD, 100, TAU) == 12345


def test_unchanged_price_read_often__decays_like_time_alone(vol):
    start = 5 * 10**10  # about 5% a day
    once = vol.next_var(start, 2000 * WAD, 0, 2000 * WAD, 3600, TAU)
    often = start
    for k in range(1, 61):  # a read every minute for an hour
        often = vol.next_var(often, 2000 * WAD, 60 * (k - 1), 2000 * WAD, 60 * k, TAU)
    expected = start * math.exp(-3600 / TAU)
    assert once == pytest.approx(expected, abs=1)  # floored to the wei
    # the same decay, to rounding (a few wei per read, always down): never faster than time
    assert abs(often - once) <= 60 * 2
    assert often >= once - 60 * 2


def test_vol_mmf__rounds_up_and_scales_with_sqrt_horizon(vol):
    var = 3 * 10**10
    got = vol.vol_mmf(var, Z, HORIZON)
    exact = 3 * math.sqrt(var / WAD * HORIZON)
    assert got / WAD >= exact and got / WAD == pytest.approx(exact, rel=1e-12)
    assert vol.vol_mmf(var, Z, 4 * HORIZON) == pytest.approx(2 * got, rel=1e-12)
    assert vol.vol_mmf(0, Z, HORIZON) == 0


def test_black_thursday__sigma_rises_in_the_crash_and_decays_after(vol):
    candles = read_candles(DATA / "eth_usd_1h_2020-03-11_black_thursday.csv")
    ups = feed_updates(path_points(candles))
    prices = [int(u.price * 10**8) * 10**10 for u in ups]
    times = [u.timestamp for u in ups]
    variances, mmfs = vol.replay(prices, times, TAU, Z, HORIZON)
    assert len(mmfs) == len(ups)
    day = 86400
    t0 = times[0]
    before = max(m for m, t in zip(mmfs, times) if t < t0 + day // 2)  # the first half day
    crash = max(mmfs)
    t_peak = times[mmfs.index(crash)]
    # the crash ran from 12 March into the early hours of 13 March (UTC)
    assert t0 + day <= t_peak < t0 + 2 * day + day // 4
    assert crash > 2 * before
    # the window ends on a still-volatile 13 March: lower than the peak, not calm yet
    assert mmfs[-1] < 0.75 * crash
    # then a calm day (an unchanged price, heartbeat answers) decays it as exp(-24 h / tau)
    calm_t = [times[-1] + 3600 * k for k in range(1, 25)]
    _, calm = vol.replay(prices + [prices[-1]] * 24, times + calm_t, TAU, Z, HORIZON)
    assert calm[-1] < crash / 10
    assert calm[-1] == pytest.approx(mmfs[-1] * math.exp(-24 * 3600 / TAU / 2), rel=1e-6)  # sigma ~ sqrt(var)
