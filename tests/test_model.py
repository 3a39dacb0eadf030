"""Unit and property tests of the pure-Python margin model (tests/model.py).

No chain is needed. Hand examples write the expected numbers out with their arithmetic; the
hypothesis properties compare the integer model with exact ``fractions.Fraction`` arithmetic and
check the liquidation identities.

Run alone with:  .venv/bin/python -m pytest tests/test_model.py -q -p no:ape_test
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from model import (  # noqa: E402
    WAD,
    Health,
    LiqParams,
    MarketParams,
    NotLiquidatable,
    Pos,
    Terms,
    account_health,
    apply_trade,
    ceil_div,
    engine_token_invariant,
    fill_price,
    floor_div,
    liquidate,
    position_terms,
    post_trade_ok,
    settle_with_pool,
    token_scale,
    trade_fee,
)

W2 = WAD * WAD
PROPS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module", autouse=True)
def _actors():
    """No chain here: overrides conftest's autouse fixture of this name, which needs Ape's
    ``accounts`` (absent under ``-p no:ape_test``)."""


@pytest.fixture(scope="module", autouse=True)
def _fast_reverts():
    """No chain here: overrides conftest's autouse Ape patching of this name."""


def pct(x: str) -> int:
    """WAD fraction from a percentage written as text, exactly ("0.5" -> 0.005 WAD)."""
    return int(Fraction(x) * WAD / 100)


def market(mmf="5", imf="10", mult=WAD, l="1", fee="0", skew_scale=10**24, min_n=0) -> MarketParams:
    return MarketParams(pct(mmf), pct(imf), mult, pct(l), pct(fee), skew_scale, min_n)


# =============================================================================================
# Hand-computed examples
# =============================================================================================


def test_ceil_and_floor_div():
    assert ceil_div(7, 2) == 4  # 3.5 up
    assert floor_div(7, 2) == 3  # 3.5 down
    assert ceil_div(-7, 2) == -3  # -3.5 up is -3 (toward +inf)
    assert floor_div(-7, 2) == -4  # -3.5 down is -4 (toward -inf)
    assert ceil_div(-6, 3) == -2 and floor_div(-6, 3) == -2  # exact
    assert ceil_div(0, 5) == 0 and floor_div(0, 5) == 0
    with pytest.raises(ValueError):
        ceil_div(1, 0)
    with pytest.raises(ValueError):
        floor_div(1, -1)


def test_position_terms_long_exact():
    # 2 ETH long at P = 1500.5, cost 3000:
    #   N = 2 * 1500.5 = 3001; V = 3001; U = 3001 - 3000 = 1
    #   MM = 3001 * 5% = 150.05; IM = max(3001 * 10% = 300.1, 150.05 * 1.5 = 225.075) = 300.1
    #   L = 3001 * 1% = 30.01
    m = market(mmf="5", imf="10", mult=15 * WAD // 10, l="1")
    t = position_terms(Pos(2 * WAD, 3000 * WAD, 15005 * WAD // 10, m))
    assert t == Terms(
        N=3001 * WAD,
        V=3001 * WAD,
        U=1 * WAD,
        MM=15005 * WAD // 100,
        IM=3001 * WAD // 10,
        L=3001 * WAD // 100,
    )


def test_position_terms_short_rounds_against_account():
    # size = -7 wei, P = 1 + 3e-18 (WAD + 3), cost = -7:
    #   |size| * P / WAD = 7 + 21e-18  -> N = ceil = 8
    #   size * P / WAD = -7 - 21e-18   -> V = floor = -8;  U = -8 - (-7) = -1
    #   MM = ceil(8 * 0.5) = 4;  IM = max(ceil(8 * 0.3 = 2.4) = 3, ceil(4 * 1.1 = 4.4) = 5) = 5
    #   L = ceil(8 * 0.01 = 0.08) = 1
    m = MarketParams(WAD // 2, 3 * WAD // 10, 11 * WAD // 10, WAD // 100, 0, 1, 0)
    assert position_terms(Pos(-7, -7, WAD + 3, m)) == Terms(N=8, V=-8, U=-1, MM=4, IM=5, L=1)


def test_position_terms_rejects_bad_state():
    with pytest.raises(ValueError):
        position_terms(Pos(1, 1, 0, market()))  # price must be positive
    with pytest.raises(ValueError):
        position_terms(Pos(0, 5, WAD, market()))  # zero size with a cost basis


def test_account_health_examples():
    m = market(mmf="5", imf="10", l="1")
    # one long: 10 ETH, cost 10500, P = 1000: U = 10000 - 10500 = -500; MM = 500; IM = 1000
    p = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, m)
    # collateral 900: E = 900 - 500 = 400 < 500 -> liquidatable
    assert account_health(900 * WAD, [p]) == Health(400 * WAD, 1000 * WAD, 500 * WAD, True)
    # collateral 1000: E = 500 = M -> not liquidatable (strictly less is required)
    assert account_health(1000 * WAD, [p]) == Health(500 * WAD, 1000 * WAD, 500 * WAD, False)
    # collateral 999.999...9: E = 500 - 1 wei -> liquidatable
    assert account_health(1000 * WAD - 1, [p]).liquidatable is True
    # add a short: -1 ETH at cost -2100 with P = 2000: V = -2000, U = -2000 + 2100 = 100
    #   N = 2000, MM = 100, IM = 200: E = 900 - 500 + 100 = 500, M = 600, I = 1200
    q = Pos(-WAD, -2100 * WAD, 2000 * WAD, m)
    assert account_health(900 * WAD, [p, q]) == Health(500 * WAD, 1200 * WAD, 600 * WAD, True)
    # no open position: never liquidatable, even with negative equity
    assert account_health(-5, [Pos(0, 0, WAD, m)]) == Health(-5, 0, 0, False)
    assert account_health(-5, []) == Health(-5, 0, 0, False)


def test_post_trade_ok_examples():
    m = market(mmf="5", imf="10")
    p = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, m)  # U = -500, I = 1000
    # E = 1500 - 500 = 1000 = I: an increase is allowed; one wei less is not
    assert post_trade_ok(1500 * WAD, [p], increases=True)
    assert not post_trade_ok(1500 * WAD - 1, [p], increases=True)
    # a reduction only needs E >= 0: collateral 500 gives E = 0
    assert post_trade_ok(500 * WAD, [p], increases=False)
    assert not post_trade_ok(500 * WAD - 1, [p], increases=False)
    # negative collateral blocks an increase even with E >= I (a long with a large gain)
    gain = Pos(10 * WAD, 0, 1000 * WAD, m)  # U = 10000
    assert not post_trade_ok(-1, [gain], increases=True)
    assert post_trade_ok(0, [gain], increases=True)


def test_fill_price_examples():
    # P = 1000, skew 10, buy 2, skew_scale 1e6 units:
    #   adj = (10 + 12) * 1000 / (2 * 1e6) = 22000 / 2e6 = 0.011  -> fill = 1000.011 (exact)
    assert fill_price(1000 * WAD, 10 * WAD, 2 * WAD, 10**6 * WAD) == 1000 * WAD + 11 * 10**15
    # wei-level rounding with P = 3, skew_scale = 2 (all in wei):
    #   buy 1 from skew 0:  adj = (0 + 1) * 3 / 4 = 0.75  -> ceil 1   -> fill 4
    #   sell 1 from skew 0: adj = (0 - 1) * 3 / 4 = -0.75 -> floor -1 -> fill 2
    #   sell 1 from skew 1: adj = (1 + 0) * 3 / 4 = 0.75  -> floor 0  -> fill 3
    #   buy 1 from skew -1: adj = (-1 + 0) * 3 / 4 = -0.75 -> ceil 0  -> fill 3
    assert fill_price(3, 0, 1, 2) == 4
    assert fill_price(3, 0, -1, 2) == 2
    assert fill_price(3, 1, -1, 2) == 3
    assert fill_price(3, -1, 1, 2) == 3


def test_fill_price_rejects():
    # P = 4, skew -1, sell 2, skew_scale 2: adj = (-1 - 3) * 4 / 4 = -4 -> fill 0 -> rejected
    with pytest.raises(ValueError):
        fill_price(4, -1, -2, 2)
    # P = 1, skew -10, sell 1, skew_scale 1: adj = floor(-21 / 2) = -11 -> fill -10 -> rejected
    with pytest.raises(ValueError):
        fill_price(1, -10, -1, 1)
    # one wei above zero is fine: P = 4, skew 0, sell 2, skew_scale 2: adj = -2 * 4 / 4 = -2 -> 2
    assert fill_price(4, 0, -2, 2) == 2
    with pytest.raises(ValueError):
        fill_price(WAD, 0, 0, WAD)  # zero trade
    with pytest.raises(ValueError):
        fill_price(WAD, 0, 1, 0)  # no skew scale


def test_apply_trade_examples():
    p = WAD + 1  # 1.000000000000000001
    # open long 3 wei: cost = ceil(3 * p / WAD) = ceil(3.000...003) = 4
    assert apply_trade(0, 0, 3, p) == (3, 4, 0)
    # open short 3 wei: cost = ceil(-3.000...003) = -3 (the short is credited less)
    assert apply_trade(0, 0, -3, p) == (-3, -3, 0)
    # increase a long 10 @ cost 25 by 5 at 3e18 + 1: cost += ceil(15.000...005) = 16 -> 41
    assert apply_trade(10, 25, 5, 3 * WAD + 1) == (15, 41, 0)
    # reduce long 10 @ 25 by 3 at 2e18 + 1:
    #   removed = ceil(25 * 3 / 10 = 7.5) = 8; proceeds = floor(6.000...003) = 6; realized = -2
    assert apply_trade(10, 25, -3, 2 * WAD + 1) == (7, 17, -2)
    # reduce short -10 @ -25 by 3 at 2e18 + 1 (c = -3):
    #   removed = ceil(-25 * -3 / -10 = -7.5) = -7; proceeds = floor(-6.000...003) = -7
    #   realized = -7 - (-7) = 0; cost = -25 + 7 = -18
    assert apply_trade(-10, -25, 3, 2 * WAD + 1) == (-7, -18, 0)
    # full close long 10 @ 25 at 3: realized = 30 - 25 = 5
    assert apply_trade(10, 25, -10, 3 * WAD) == (0, 0, 5)
    # flip long 10 @ 25 by -15 at 3e18 + 1:
    #   close: floor(30.000...01) - 25 = 5; open -5: cost = ceil(-15.000...005) = -15
    assert apply_trade(10, 25, -15, 3 * WAD + 1) == (-5, -15, 5)
    # flip short -4 @ -10 by +6 at 2e18: close: floor(-8) - (-10) = 2; open 2: cost = 4
    assert apply_trade(-4, -10, 6, 2 * WAD) == (2, 4, 2)
    # realistic: long 2 ETH @ 3000 reduced by 0.5 at 1600:
    #   removed = 3000 * 0.5 / 2 = 750; proceeds = 800; realized = 50; cost 2250
    assert apply_trade(2 * WAD, 3000 * WAD, -WAD // 2, 1600 * WAD) == (3 * WAD // 2, 2250 * WAD, 50 * WAD)
    # zero delta: unchanged
    assert apply_trade(10, 25, 0, WAD) == (10, 25, 0)


def test_trade_fee_examples():
    # 2 ETH at 1500 with 0.1%: T = 3000, fee = 3
    assert trade_fee(2 * WAD, 1500 * WAD, pct("0.1")) == 3 * WAD
    # sell 3 wei at 1e18 + 1 with 50%: T = ceil(3.000...003) = 4; fee = ceil(4 * 0.5) = 2
    assert trade_fee(-3, WAD + 1, WAD // 2) == 2
    # 3 wei at 1 with 40%: T = 3; fee = ceil(1.2) = 2
    assert trade_fee(3, WAD, 4 * WAD // 10) == 2
    # fee rate zero: no fee
    assert trade_fee(5 * WAD, 1000 * WAD, 0) == 0


# ---------------------------------------------------------------------------------------------
# Liquidation by hand. One market: mmf 5%, l 1%; 10 ETH long, cost 10500, P = 1000:
#   N = 10000, V = 10000, U = -500, MM = 500, L = 100.
# ---------------------------------------------------------------------------------------------

LONG = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, market(mmf="5", imf="10", l="1", min_n=100 * WAD))
LIQ = LiqParams(liq_target=12 * WAD // 10, keeper_share=WAD // 2, min_keeper_reward=WAD, max_keeper_reward=1000 * WAD)


def test_liquidate_partial_by_hand():
    # collateral 900 -> E = 400 < M = 500; one open position, so k = 1: slack 10 wei.
    # tM = 1.2 * 500 = 600; num = 600e18 - 400e18 + 10 = 200e18 + 10; den = 600 - 100 = 500e18
    # f = ceil((200e18 + 10) * 1e18 / 500e18) = ceil(0.4e18 + 10 / 500) = 0.4e18 + 1
    # c = ceil(10e18 * (0.4e18 + 1) / 1e18) = 4e18 + 10 (exact); rest 6e18 - 10, whose notional
    #   ceil((6e18 - 10) * 1000) = 6000e18 - 10000 >= 100e18: not dust
    # removed = ceil(10500e18 * (4e18 + 10) / 10e18) = 1050 * (4e18 + 10) = 4200e18 + 10500 (exact)
    # proceeds = floor((4e18 + 10) * 1000) = 4000e18 + 10000; realized = -200e18 - 500
    # cost left = 10500e18 - (4200e18 + 10500) = 6300e18 - 10500
    # n = 4000e18 + 10000; penalty = ceil(n * 1%) = 40e18 + 100
    # collateral 900e18 - 200e18 - 500 = 700e18 - 500; U' = (6000e18 - 10000) - (6300e18 - 10500)
    #   = -300e18 + 500; left = 700e18 - 500 - 300e18 + 500 = 400e18 >= penalty -> paid in full
    #   collateral 700e18 - 500 - (40e18 + 100) = 660e18 - 600
    # reward = floor(0.5 * (40e18 + 100)) = 20e18 + 50, within [1e18, 1000e18] and <= penalty
    # insurance 0 + (40e18 + 100) - (20e18 + 50) = 20e18 + 50 (scale 1: no remainder)
    # pool gains -realized = 200e18 + 500
    r = liquidate(900 * WAD, [LONG], LIQ, 0)
    assert (r.full, r.fraction) == (False, 4 * WAD // 10 + 1)
    assert r.closed == [4 * WAD + 10] and r.new_sizes == [6 * WAD - 10] and r.new_costs == [6300 * WAD - 10500]
    assert (r.realized, r.closed_notional) == (-200 * WAD - 500, 4000 * WAD + 10000)
    assert (r.penalty, r.paid) == (40 * WAD + 100, 40 * WAD + 100)
    assert (r.reward, r.bad_debt, r.collateral_after) == (20 * WAD + 50, 0, 660 * WAD - 600)
    assert (r.insurance_after, r.written_off, r.pool_delta) == (20 * WAD + 50, 0, 200 * WAD + 500)
    # afterwards: E' = (660e18 - 600) + (-300e18 + 500) = 360e18 - 100
    #   MM' = ceil((6000e18 - 10000) * 5%) = 300e18 - 500; ceil(1.2 * MM') = 360e18 - 600
    #   so E' is 500 wei above the target (without the slack, f = 0.4 lands on 360e18 exactly)
    after = account_health(r.collateral_after, [Pos(6 * WAD - 10, 6300 * WAD - 10500, 1000 * WAD, LONG.market)])
    assert (after.equity, after.maintenance_req) == (360 * WAD - 100, 300 * WAD - 500)
    assert ceil_div(LIQ.liq_target * after.maintenance_req, WAD) == 360 * WAD - 600
    # conservation: d(collateral) -240e18 - 600 + d(insurance) 20e18 + 50 + pool 200e18 + 500
    #   + reward 20e18 + 50 = 0
    assert (r.collateral_after - 900 * WAD) + r.insurance_after + r.pool_delta + r.reward_tokens == 0


def test_liquidate_full_with_bad_debt_by_hand():
    # collateral 400 -> E = -100 <= 0 -> full close.
    # realized = 10000 - 10500 = -500; collateral 400 - 500 = -100 -> bad debt 100, collateral 0
    # penalty = 1% of 10000 = 100; paid = min(100, 0) = 0
    # reward = clamp(50, 1, 30) = 30 (max 30), but no more than max(paid, floor) = max(0, 1) = 1
    # insurance 50 + 0 - 1 = 49, then - 100 = -51 -> fund 0, pool writes off 51
    # pool_delta = +500 (trader's loss) - 51 = 449
    liq = LiqParams(12 * WAD // 10, WAD // 2, WAD, 30 * WAD)
    r = liquidate(400 * WAD, [LONG], liq, 50 * WAD)
    assert (r.full, r.fraction, r.closed, r.new_sizes, r.new_costs) == (True, WAD, [10 * WAD], [0], [0])
    assert (r.realized, r.penalty, r.paid, r.reward) == (-500 * WAD, 100 * WAD, 0, WAD)
    assert (r.bad_debt, r.collateral_after, r.insurance_after) == (100 * WAD, 0, 0)
    assert (r.written_off, r.reward_shortfall, r.bad_debt_insurance_paid) == (51 * WAD, 0, 49 * WAD)
    assert r.pool_delta == 449 * WAD
    # conservation: d(collateral) -400 + d(insurance) -50 + pool 449 + reward 1 = 0
    assert (0 - 400 * WAD) + (0 - 50 * WAD) + r.pool_delta + r.reward == 0


def test_liquidate_full_when_fraction_reaches_one():
    # collateral 501 -> E = 1: num = 600 - 1 + 10 wei = 599e18 + 10, den = 500 -> f > 1.198 -> full
    # realized -500 -> collateral 1; penalty 100, paid 1 -> collateral 0
    # reward = min(50, max(paid 1, floor 1)) = 1; insurance 100 + 1 - 1 = 100; pool +500
    r = liquidate(501 * WAD, [LONG], LIQ, 100 * WAD)
    assert (r.full, r.fraction, r.new_sizes) == (True, WAD, [0])
    assert (r.paid, r.reward, r.collateral_after, r.insurance_after) == (WAD, WAD, 0, 100 * WAD)
    assert (r.bad_debt, r.written_off, r.pool_delta) == (0, 0, 500 * WAD)


def test_liquidate_full_when_denominator_not_positive():
    # penalty rate 7%: L = 700 > tM = 600 -> den = -100 -> full (even though E = 400 > 0)
    # realized -500 -> collateral 400; penalty 700, paid 400 -> 0; reward = 350
    # insurance 0 + 400 - 350 = 50
    pos = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, market(mmf="5", l="7"))
    r = liquidate(900 * WAD, [pos], LIQ, 0)
    assert (r.full, r.penalty, r.paid, r.reward) == (True, 700 * WAD, 400 * WAD, 350 * WAD)
    assert (r.collateral_after, r.insurance_after, r.pool_delta) == (0, 50 * WAD, 500 * WAD)


def test_liquidate_dust_remainder_closes_the_position():
    # as the partial example, but min_position_notional 7000: the rest (6e18 - 10 wei, notional
    # 6000e18 - 10000) is dust,
    # so the only position closes in full; no position is left, so this is a full close.
    # realized -500 -> collateral 400; penalty 100 -> 300; reward 50; insurance 100 - 50 = 50
    pos = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, market(mmf="5", l="1", min_n=7000 * WAD))
    r = liquidate(900 * WAD, [pos], LIQ, 0)
    assert (r.full, r.fraction, r.closed, r.new_sizes) == (True, WAD, [10 * WAD], [0])
    assert (r.penalty, r.collateral_after, r.reward, r.insurance_after) == (100 * WAD, 300 * WAD, 50 * WAD, 50 * WAD)


def test_liquidate_dust_boundary_is_strict():
    # partial example: c = 4e18 + 10, rest 6e18 - 10 with notional ceil((6e18 - 10) * 1000)
    # = 6000e18 - 10000. min_position_notional exactly that: not "under" it -> partial
    pos = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, market(mmf="5", l="1", min_n=6000 * WAD - 10000))
    r = liquidate(900 * WAD, [pos], LIQ, 0)
    assert (r.full, r.closed, r.new_sizes) == (False, [4 * WAD + 10], [6 * WAD - 10])
    # one wei more and the rest is dust -> closed in full
    pos = Pos(10 * WAD, 10500 * WAD, 1000 * WAD, market(mmf="5", l="1", min_n=6000 * WAD - 9999))
    assert liquidate(900 * WAD, [pos], LIQ, 0).new_sizes == [0]


def test_liquidate_zero_equity_is_full():
    # collateral 500 -> E = 0: full close (num = 600e18 + 10 > den = 500e18: f >= 1 as well)
    # realized -500 -> collateral 0: no bad debt, nothing paid; the reward floor 1 from insurance
    r = liquidate(500 * WAD, [LONG], LIQ, 80 * WAD)
    assert (r.full, r.bad_debt, r.paid, r.reward) == (True, 0, 0, WAD)
    assert (r.collateral_after, r.insurance_after, r.pool_delta) == (0, 79 * WAD, 500 * WAD)


def test_liquidate_penalty_from_equity_or_collateral():
    # 10 ETH long, cost 9000, P = 1000: U = +1000, MM = 500, L = 100; collateral -700 -> E = 300
    # tM = 600; num = 600e18 - 300e18 + 10 = 300e18 + 10; den = 500e18
    # f = ceil((300e18 + 10) / 500) = 0.6e18 + 1; c = ceil(10 * (0.6e18 + 1)) = 6e18 + 10
    # removed = 9000e18 * (6e18 + 10) / 10e18 = 900 * (6e18 + 10) = 5400e18 + 9000 (exact)
    # proceeds = (6e18 + 10) * 1000 = 6000e18 + 10000; realized = 600e18 + 1000
    # rest 4e18 - 10 at cost 9000e18 - 5400e18 - 9000 = 3600e18 - 9000
    #   V' = 4000e18 - 10000, U' = 400e18 - 1000
    # collateral -700e18 + 600e18 + 1000 = -100e18 + 1000; n = 6000e18 + 10000
    # penalty = ceil(n * 1%) = 60e18 + 100; reward = floor(0.5 * penalty) = 30e18 + 50
    pos = Pos(10 * WAD, 9000 * WAD, 1000 * WAD, market(mmf="5", l="1"))
    # doc (default, equity): left = (-100e18 + 1000) + (400e18 - 1000) = 300e18 >= penalty
    #   -> paid 60e18 + 100; collateral -100e18 + 1000 - 60e18 - 100 = -160e18 + 900
    #   insurance 0 + (60e18 + 100) - (30e18 + 50) = 30e18 + 50; nothing written off
    #   pool gains -realized = -600e18 - 1000
    r = liquidate(-700 * WAD, [pos], LIQ, 0)
    assert (r.fraction, r.closed, r.new_costs) == (6 * WAD // 10 + 1, [6 * WAD + 10], [3600 * WAD - 9000])
    assert (r.realized, r.penalty, r.paid) == (600 * WAD + 1000, 60 * WAD + 100, 60 * WAD + 100)
    assert (r.collateral_after, r.reward, r.insurance_after) == (-160 * WAD + 900, 30 * WAD + 50, 30 * WAD + 50)
    assert (r.written_off, r.pool_delta) == (0, -600 * WAD - 1000)
    # E' = (-160e18 + 900) + (400e18 - 1000) = 240e18 - 100; MM' = ceil((4000e18 - 10000) * 5%)
    # = 200e18 - 500; ceil(1.2 * MM') = 240e18 - 600 <= E'
    after = account_health(r.collateral_after, after_positions([pos], r))
    assert (after.equity, after.maintenance_req) == (240 * WAD - 100, 200 * WAD - 500)
    # the earlier reading (collateral): paid = min(60e18 + 100, max(-100e18 + 1000, 0)) = 0
    #   the reward is then the floor, max(paid 0, 1e18); fund 0 + 0 - 1e18 < 0 -> the pool pays
    #   it: written off 1e18; pool_delta = -600e18 - 1000 - 1e18 = -601e18 - 1000
    r = liquidate(-700 * WAD, [pos], LIQ, 0, penalty_from="collateral")
    assert (r.paid, r.collateral_after, r.reward) == (0, -100 * WAD + 1000, WAD)
    assert (r.insurance_after, r.written_off, r.reward_shortfall) == (0, WAD, WAD)
    assert r.pool_delta == -601 * WAD - 1000


def test_liquidate_min_reward_capped_by_penalty():
    # partial example (penalty = paid = 40e18 + 100) with min reward 50:
    #   clamp(20e18 + 50, 50e18, 1000e18) = 50e18, then min(50e18, 40e18 + 100) = 40e18 + 100
    # insurance 5e18 + (40e18 + 100) - (40e18 + 100) = 5e18: nothing written off
    # pool_delta = 200e18 + 500. A self-liquidator pays 40e18 + 100 and gets the same back.
    liq = LiqParams(12 * WAD // 10, WAD // 2, 50 * WAD, 1000 * WAD)
    r = liquidate(900 * WAD, [LONG], liq, 5 * WAD)
    assert (r.penalty, r.paid, r.reward, r.reward_tokens) == (40 * WAD + 100,) * 4
    assert (r.insurance_after, r.written_off, r.reward_shortfall) == (5 * WAD, 0, 0)
    assert r.pool_delta == 200 * WAD + 500
    # the same on the max side does not bind: max 10 -> clamp(20e18 + 50) = 10e18 <= penalty
    r = liquidate(900 * WAD, [LONG], LiqParams(12 * WAD // 10, WAD // 2, 0, 10 * WAD), 0)
    assert (r.reward, r.insurance_after) == (10 * WAD, 30 * WAD + 100)  # 40e18 + 100 - 10e18


def test_liquidate_min_reward_shortfall_comes_from_pool():
    # collateral 501 -> E = 1: full close (num = 599e18 + 10 > den = 500e18); realized -500 ->
    # collateral 1; penalty 100, paid 1 -> collateral 0
    # min reward 50: clamp(0.5 * 100 = 50, 50, 1000) = 50 <= penalty 100
    # fund 5 + 1 - 50 = -44 -> the pool pays 44 (reward_shortfall), fund 0
    # pool_delta = 500 - 44 = 456; conservation: -501 - 5 + 456 + 50 = 0
    liq = LiqParams(12 * WAD // 10, WAD // 2, 50 * WAD, 1000 * WAD)
    r = liquidate(501 * WAD, [LONG], liq, 5 * WAD)
    assert (r.full, r.paid, r.reward, r.collateral_after) == (True, WAD, 50 * WAD, 0)
    assert (r.insurance_after, r.written_off, r.reward_shortfall) == (0, 44 * WAD, 44 * WAD)
    assert (r.bad_debt, r.bad_debt_written_off, r.pool_delta) == (0, 0, 456 * WAD)
    # shortfall first, then bad debt: collateral 400 -> realized -500 -> bad debt 100, paid 0
    # fund 5 + 0 - 50 = -45 -> shortfall 45, fund 0; the fund pays 0 of the bad debt, the pool
    # writes off all 100: written_off 145; pool_delta = 500 - 145 = 355
    # conservation: -400 - 5 + 355 + 50 = 0
    r = liquidate(400 * WAD, [LONG], liq, 5 * WAD)
    assert (r.bad_debt, r.paid, r.reward, r.insurance_after) == (100 * WAD, 0, 50 * WAD, 0)
    assert (r.reward_shortfall, r.bad_debt_insurance_paid, r.bad_debt_written_off) == (45 * WAD, 0, 100 * WAD)
    assert (r.written_off, r.pool_delta) == (145 * WAD, 355 * WAD)


def test_liquidate_reward_remainder_goes_back_to_insurance():
    # partial example (penalty = paid = 40e18 + 100) on a 6-decimal token (scale 1e12), min reward
    # 20e18 + 999_999_999_999: reward = max(20e18 + 50, that) = 20e18 + 999_999_999_999 <= penalty
    # tokens = reward // 1e12 = 20_000_000 (20e18 WAD), remainder 999_999_999_999
    # fund 0 + (40e18 + 100) - (20e18 + 999_999_999_999) = 19_999_999_000_000_000_101 >= 0, no bad
    # debt; then the remainder comes back: 19_999_999_000_000_000_101 + 999_999_999_999 = 20e18 + 100
    # conservation: (660e18 - 600 - 900e18) + (20e18 + 100) + (200e18 + 500) + 20e18 = 0
    liq = LiqParams(12 * WAD // 10, WAD // 2, 20 * WAD + 999_999_999_999, 1000 * WAD)
    r = liquidate(900 * WAD, [LONG], liq, 0, scale=10**12)
    assert (r.reward, r.reward_tokens) == (20 * WAD + 999_999_999_999, 20_000_000)
    assert (r.insurance_after, r.written_off, r.pool_delta) == (20 * WAD + 100, 0, 200 * WAD + 500)
    assert (r.collateral_after - 900 * WAD) + r.insurance_after + r.pool_delta + r.reward_tokens * 10**12 == 0
    # the fund is debited the WHOLE reward before the remainder comes back, so a shortfall is
    # measured against R: collateral 501 (full close, paid 1e18), insurance 0, min reward 50e18 + 7
    #   reward 50e18 + 7 (<= penalty 100e18); tokens 50_000_000, remainder 7
    #   fund 0 + 1e18 - (50e18 + 7) = -(49e18 + 7) -> shortfall 49e18 + 7, fund 0; then + 7 -> 7
    #   pool_delta = 500e18 - (49e18 + 7) = 451e18 - 7
    #   conservation: -501e18 + 7 + (451e18 - 7) + 50e18 = 0
    liq = LiqParams(12 * WAD // 10, WAD // 2, 50 * WAD + 7, 1000 * WAD)
    r = liquidate(501 * WAD, [LONG], liq, 0, scale=10**12)
    assert (r.full, r.paid, r.reward, r.reward_tokens) == (True, WAD, 50 * WAD + 7, 50_000_000)
    assert (r.reward_shortfall, r.written_off, r.insurance_after) == (49 * WAD + 7, 49 * WAD + 7, 7)
    assert r.pool_delta == 451 * WAD - 7


def test_not_liquidatable_raises():
    with pytest.raises(NotLiquidatable):
        liquidate(1000 * WAD, [LONG], LIQ, 0)  # E = 500 = M
    with pytest.raises(NotLiquidatable):
        liquidate(-1, [Pos(0, 0, WAD, LONG.market)], LIQ, 0)  # no position
    with pytest.raises(ValueError):
        liquidate(900 * WAD, [LONG], LiqParams(WAD - 1, 0, 0, 0), 0)  # target below 1
    with pytest.raises(ValueError):
        liquidate(900 * WAD, [LONG], LiqParams(WAD, 0, 2, 1), 0)  # min reward above max


# Two markets, both at P = 1000 with 1 ETH long and cost 1000 (U = 0), collateral 100, t = 1.2:
#   A: mmf 1%, l 5%, min notional 600 -> MM 10,  L 50
#   B: mmf 10%, l 1%                  -> MM 100, L 10
#   M = 110, tM = 132, Lsum = 60, E = 100, k = 2: num = 32e18 + 20, den = 72e18,
#   f = ceil((32e18 + 20) / 72) = ceil(444444444444444444.72) = 0.444..445
#   c = 0.444..445 ETH each; A's rest 0.555..555 ETH = 555.55 < 600 -> A closes in full.
#   penalty = 50 (A) + 1% of 444.44..445 = 4.444..4450 (B) = 54.444..4450; realized 0
#   E' = 100 - 54.444..445 = 45.555..555; MM'(B) = 10% of 555.555..555 = 55.555..5555
DUST_A = market(mmf="1", l="5", min_n=600 * WAD)
DUST_B = market(mmf="10", l="1")
DUST_POS = [Pos(WAD, 1000 * WAD, 1000 * WAD, DUST_A), Pos(WAD, 1000 * WAD, 1000 * WAD, DUST_B)]


def test_dust_rule_by_hand_position_mode():
    r = liquidate(100 * WAD, DUST_POS, LIQ, 0)
    f = 444444444444444445
    assert (r.full, r.fraction, r.closed) == (False, f, [WAD, f])
    assert r.penalty == 50 * WAD + 4444444444444444450
    assert r.collateral_after == 100 * WAD - r.penalty == 45555555555555555550
    after = account_health(r.collateral_after, [Pos(r.new_sizes[1], r.new_costs[1], 1000 * WAD, DUST_B)])
    assert after.maintenance_req == 55555555555555555500


def test_dust_rule_account_mode_closes_everything():
    # account reading: A's dust turns it into a full close: penalty 50 + 10 = 60; reward 30
    r = liquidate(100 * WAD, DUST_POS, LIQ, 0, dust="account")
    assert (r.full, r.fraction, r.new_sizes) == (True, WAD, [0, 0])
    assert (r.penalty, r.collateral_after, r.reward, r.insurance_after) == (60 * WAD, 40 * WAD, 30 * WAD, 30 * WAD)


def test_dust_rule_needs_penalty_at_most_target_mmf():
    """Why the contract bounds liq_penalty <= mmf: with market A's l = 5% > 1.2 * 1%, the
    per-position dust rule closes A in full and its penalty outweighs the requirement it frees,
    leaving the account liquidatable right after its liquidation (E' = 45.55 < MM' = 55.55)."""
    assert any(p.market.liq_penalty > LIQ.liq_target * p.market.mmf // WAD for p in DUST_POS)
    r = liquidate(100 * WAD, DUST_POS, LIQ, 0)
    after = account_health(r.collateral_after, after_positions(DUST_POS, r))
    assert after.liquidatable


def test_doc_fraction_restores_target_to_the_wei():
    # found by hypothesis against the old rule (no slack): 0.027 ETH long at 108, cost 2.79936,
    # mmf 3%, l 2%, t = 1.5, collateral -37357188395000381. There f = 712444285253777518 closed
    # 19235995701851993 and left E' one wei under ceil(t * M'). With 10 wei of slack:
    #   N = V = 0.027e18 * 108 = 2916e15; U = 2916e15 - 2799360e12 = 116640e12
    #   E = -37357188395000381 + 116640000000000000 = 79282811604999619
    #   MM = 2916e15 * 3% = 87480e12 (exact); L = 2916e15 * 2% = 58320e12; tM = 1.5 * MM = 131220e12
    #   num = 131220e12 - 79282811604999619 + 10 = 51937188395000391; den = 131220e12 - 58320e12 = 72900e12
    #   f = ceil(51937188395000391 * 1e18 / 72900e12) = ceil(519371883950003910000 / 729)
    #     = ceil(712444285253777654.32) = 712444285253777655
    #   c = ceil(27e15 * f / 1e18) = ceil(19235995701851996.685) = 19235995701851997
    #   rest = 27e15 - c = 7764004298148003
    #   removed = ceil(2799360e12 * c / 27e15) = ceil(1994388034368015048.96) = 1994388034368015049
    #   proceeds = c * 108 = 2077487535800015676; realized = 83099501432000627
    #   cost left = 2799360e12 - removed = 804971965631984951
    #   penalty = ceil(2077487535800015676 * 2%) = ceil(41549750716000313.52) = 41549750716000314
    #   collateral -37357188395000381 + 83099501432000627 = 45742313037000246
    #   V' = rest * 108 = 838512464199984324; U' = V' - 804971965631984951 = 33540498567999373
    #   left = 45742313037000246 + 33540498567999373 = 79282811604999619 >= penalty: paid in full
    #   collateral 45742313037000246 - 41549750716000314 = 4192562320999932
    #   E' = 4192562320999932 + 33540498567999373 = 37733060888999305
    #   MM' = ceil(838512464199984324 * 3%) = ceil(25155373925999529.72) = 25155373925999530
    #   ceil(1.5 * MM') = 37733060888999295 -> E' is 10 wei above the target
    m = MarketParams(3 * 10**16, 6 * 10**16, WAD, 2 * 10**16, 0, 1, 0)
    p = Pos(27 * 10**15, 279936 * 10**13, 108 * WAD, m)
    t = 15 * WAD // 10
    r = liquidate(-37357188395000381, [p], LiqParams(t, 0, 0, 0), 0)
    assert (r.full, r.fraction, r.closed) == (False, 712444285253777655, [19235995701851997])
    assert (r.new_sizes, r.new_costs) == ([7764004298148003], [804971965631984951])
    assert (r.realized, r.penalty, r.paid) == (83099501432000627, 41549750716000314, 41549750716000314)
    assert r.collateral_after == 4192562320999932
    after = account_health(r.collateral_after, [Pos(r.new_sizes[0], r.new_costs[0], p.price, m)])
    assert (after.equity, after.maintenance_req) == (37733060888999305, 25155373925999530)
    assert ceil_div(t * after.maintenance_req, WAD) == 37733060888999295
    assert after.equity >= ceil_div(t * after.maintenance_req, WAD)


def test_token_edges_by_hand():
    assert token_scale(6) == 10**12 and token_scale(18) == 1 and token_scale(8) == 10**10
    with pytest.raises(ValueError):
        token_scale(19)
    # 3 tokens at scale 10 = 30 == 12 + 7 + 10 + carry 1
    assert engine_token_invariant(3, 10, [12, 7], 10, 1)
    assert not engine_token_invariant(3, 10, [12, 7], 10, 2)  # off by one wei
    assert not engine_token_invariant(3, 10, [12, 7], 0, 11)  # sums match but carry >= scale
    assert not engine_token_invariant(3, 10, [12, 7, 12], 0, -1)  # negative carry
    # settle: carry 3 + pool gains 25 = 28 -> 2 tokens to the pool, carry 8
    assert settle_with_pool(3, 25, 10) == (2, 8)
    # carry 3 + pool loses 25 = -22 -> pool sends 3 tokens (floor(-2.2) = -3), carry 8
    assert settle_with_pool(3, -25, 10) == (-3, 8)


# =============================================================================================
# Strategies
# =============================================================================================

prices = st.one_of(
    st.integers(1, 10**6),
    st.integers(10**15, 10**23),
    st.integers(1, 10**5).map(lambda x: x * WAD),
    st.integers(1, 10**7).map(lambda x: x * 10**16),
)
sizes = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(10**24), 10**24),
    st.integers(-(10**4), 10**4).map(lambda x: x * 10**17),
)
nonzero_sizes = sizes.filter(lambda s: s != 0)
fractions_ = st.one_of(st.integers(0, WAD // 5), st.integers(0, 200).map(lambda x: x * WAD // 1000))


@st.composite
def markets(draw, dust=True, max_penalty=None):
    mmf = draw(st.one_of(st.integers(1, WAD // 5), st.integers(1, 200).map(lambda x: x * WAD // 1000)))
    imf = draw(st.integers(mmf, WAD // 2))
    hi = WAD // 10 if max_penalty is None else min(WAD // 10, max_penalty(mmf))
    return MarketParams(
        mmf=mmf,
        imf=imf,
        im_multiplier=draw(st.integers(WAD, 3 * WAD)),
        liq_penalty=draw(st.integers(0, hi)),
        taker_fee=draw(st.integers(0, WAD // 100)),
        skew_scale=draw(st.integers(1, 10**27)),
        min_position_notional=draw(st.one_of(st.just(0), st.integers(0, 10**22))) if dust else 0,
    )


@st.composite
def positions(draw, m=None):
    s = draw(sizes)
    entry = draw(prices)
    cost = ceil_div(s * entry, WAD) + draw(st.integers(-10, 10)) if s else 0
    return Pos(s, cost, draw(prices), m if m is not None else draw(markets()))


@st.composite
def liq_cases(draw, dust=True, safe=False, equity="below"):
    """A liquidatable account: (collateral, positions, LiqParams, insurance, scale).

    ``liq_target`` is drawn in [1, 3] WAD (the contract's MAX_LIQ_TARGET is 3). ``safe`` keeps
    liq_penalty <= mmf in every market (the contract's bound in _check_market_params).
    ``equity="nonpositive"`` makes E <= 0."""
    t = draw(
        st.one_of(
            st.just(WAD),
            st.just(3 * WAD),
            st.integers(WAD, 3 * WAD),
            st.integers(10, 30).map(lambda x: x * WAD // 10),
        )
    )
    cap = (lambda mmf: mmf) if safe else None
    n = draw(st.integers(1, 3))
    ps = [draw(positions(draw(markets(dust=dust, max_penalty=cap)))) for _ in range(n)]
    assume(any(p.size != 0 for p in ps))
    h = account_health(0, ps)
    M = h.maintenance_req
    if equity == "nonpositive":
        E = -draw(st.one_of(st.integers(0, 10), st.integers(0, 10**24)))
    else:
        E = M - draw(st.one_of(st.integers(1, 10), st.integers(1, max(2 * M, 10))))
    collateral = E - h.equity
    lo = draw(st.one_of(st.just(0), st.integers(0, 10**20)))
    hi = draw(st.one_of(st.just(10**40), st.integers(lo, 10**22)))
    liq = LiqParams(t, draw(st.integers(0, WAD)), lo, hi)
    insurance = draw(st.one_of(st.just(0), st.integers(0, 10**24)))
    scale = draw(st.sampled_from([1, 10**10, 10**12]))
    return collateral, ps, liq, insurance, scale


def after_positions(ps, r):
    return [Pos(s, c, p.price, p.market) for s, c, p in zip(r.new_sizes, r.new_costs, ps)]


def exact_target_bound(ps, r, t) -> Fraction:
    """Upper bound (exclusive) on ceil(t * M' / WAD) - E' after a partial liquidation, derived from
    f * den >= num * WAD:
      sum_i d_i * (lam_i - tau * q_i) + 2 tau (per open position) + 2 (per closed) + 1 (per
      partly closed) + 1,
    with d_i = |c_i| - f |s_i| / WAD (>= 0; below 1 wei unless the dust rule closed the position),
    q_i = P mmf / WAD^2 and lam_i = P l / WAD^2 per wei of size, tau = t / WAD. The constant terms
    are the rounding of N, MM, penalties, ceil(t M') and the floor split of V."""
    tau = Fraction(t, WAD)
    phi = Fraction(r.fraction, WAD)
    bound = Fraction(1)
    for p, c, ns in zip(ps, r.closed, r.new_sizes):
        if p.size == 0:
            continue
        s, a = abs(p.size), abs(c)
        q = Fraction(p.price * p.market.mmf, W2)
        lam = Fraction(p.price * p.market.liq_penalty, W2)
        bound += (a - phi * s) * (lam - tau * q)
        bound += 2 * tau if ns else 0
        bound += 2 if a else 0
        bound += 1 if (a and ns) else 0
    return bound


# =============================================================================================
# Properties: rounding never favours the account
# =============================================================================================


@PROPS
@given(positions())
def test_terms_round_against_account(pos):
    t = position_terms(pos)
    m, P, s = pos.market, pos.price, pos.size
    n_exact = Fraction(abs(s) * P, WAD)
    assert n_exact <= t.N < n_exact + 1
    v_exact = Fraction(s * P, WAD)
    assert v_exact - 1 < t.V <= v_exact
    assert t.U == t.V - pos.cost
    mm_exact = n_exact * Fraction(m.mmf, WAD)
    assert mm_exact <= t.MM < mm_exact + 2
    assert t.IM >= n_exact * Fraction(m.imf, WAD)
    assert t.IM >= mm_exact * Fraction(m.im_multiplier, WAD)
    assert t.IM >= t.MM  # im_multiplier >= 1 in the strategy
    l_exact = n_exact * Fraction(m.liq_penalty, WAD)
    assert l_exact <= t.L < l_exact + 2


@PROPS
@given(nonzero_sizes, prices, fractions_)
def test_fee_rounds_up(delta, fill, rate):
    exact = Fraction(abs(delta) * fill * rate, W2)
    fee = trade_fee(delta, fill, rate)
    assert exact <= fee < exact + 2


@PROPS
@given(prices, sizes, nonzero_sizes, st.integers(1, 10**27))
def test_fill_is_the_worse_side(price, skew, delta, skew_scale):
    exact = price + Fraction((2 * skew + delta) * price, 2 * skew_scale)
    try:
        fill = fill_price(price, skew, delta, skew_scale)
    except ValueError:
        # refused only when the rounded fill is not positive: a buy rounds adj up, so its fill
        # is <= 0 iff exact <= 0; a sell rounds down, so iff exact < 1
        assert exact <= 0 if delta > 0 else exact < 1
        return
    if delta > 0:
        assert exact <= fill < exact + 1
    else:
        assert exact - 1 < fill <= exact
    assert fill > 0


@PROPS
@given(sizes, prices, nonzero_sizes, prices)
def test_increase_cost_rounds_up(size, entry, delta, fill):
    assume(size == 0 or (size > 0) == (delta > 0))
    cost = ceil_div(size * entry, WAD) if size else 0
    ns, nc, realized = apply_trade(size, cost, delta, fill)
    exact = Fraction(delta * fill, WAD)
    assert ns == size + delta and realized == 0
    assert exact <= nc - cost < exact + 1


@PROPS
@given(nonzero_sizes, prices, st.data(), prices)
def test_reduce_rounds_against_account_and_keeps_equity(size, entry, data, fill):
    cost = ceil_div(size * entry, WAD) + data.draw(st.integers(-10, 10))
    c = (1 if size > 0 else -1) * data.draw(st.integers(1, abs(size)))
    ns, nc, realized = apply_trade(size, cost, -c, fill)
    assert ns == size - c
    # exact realized: proceeds c * p minus the proportional share of the cost basis
    exact = Fraction(c * fill, WAD) - Fraction(cost * c, size)
    assert exact - 2 < realized <= exact
    if ns == 0:
        assert nc == 0
    # marking at the fill: realized + U(rest) loses at most one wei against U(before)
    u_before = floor_div(size * fill, WAD) - cost
    u_after = floor_div(ns * fill, WAD) - nc
    assert u_before - 1 <= realized + u_after <= u_before


@PROPS
@given(nonzero_sizes, prices, st.data(), prices)
def test_flip_equals_close_plus_open(size, entry, data, fill):
    cost = ceil_div(size * entry, WAD) + data.draw(st.integers(-10, 10))
    extra = data.draw(st.integers(1, 10**24))
    delta = -size - (extra if size > 0 else -extra)  # opposite sign, |delta| > |size|
    ns, nc, realized = apply_trade(size, cost, delta, fill)
    s1, c1, r1 = apply_trade(size, cost, -size, fill)
    assert (s1, c1) == (0, 0)
    s2, c2, r2 = apply_trade(0, 0, size + delta, fill)
    assert (ns, nc, realized) == (s2, c2, r1 + r2) and r2 == 0
    assert (ns > 0) != (size > 0)


# =============================================================================================
# Properties: liquidation
# =============================================================================================


@PROPS
@given(liq_cases(equity="nonpositive"))
def test_full_close_when_equity_not_positive(case):
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale)
    assert r.full and r.fraction == WAD
    assert r.new_sizes == [0] * len(ps) and r.new_costs == [0] * len(ps)
    assert r.closed == [p.size for p in ps]
    assert r.collateral_after >= 0


@PROPS
@given(liq_cases(dust=False))
def test_fraction_is_the_smallest_ceiling(case):
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale)
    h = account_health(collateral, ps)
    tM = ceil_div(liq.liq_target * h.maintenance_req, WAD)
    k = sum(1 for p in ps if p.size != 0)
    num, den = tM - h.equity + 10 * k, tM - sum(position_terms(p).L for p in ps)
    assert num > 10 * k  # liq_target >= 1 and E < M
    # the doc's full-close conditions, with f >= 1 written without division
    doc_full = h.equity <= 0 or den <= 0 or num * WAD > (WAD - 1) * den
    if doc_full:
        assert r.full and r.fraction == WAD and all(ns == 0 for ns in r.new_sizes)
        return
    # f: the smallest integer with f * den >= num * WAD; each c the smallest with |c| >= |s| f
    f = next(x for x in (num * WAD // den, num * WAD // den + 1) if x * den >= num * WAD)
    assert (f - 1) * den < num * WAD <= f * den and 0 < f < WAD
    assert r.fraction == (WAD if r.full else f)
    for p, c in zip(ps, r.closed):
        if p.size == 0:
            assert c == 0
            continue
        assert c * p.size > 0
        assert (abs(c) - 1) * WAD < abs(p.size) * f <= abs(c) * WAD
    assert r.full == all(abs(c) == abs(p.size) for p, c in zip(ps, r.closed))


@PROPS
@given(liq_cases(dust=False), st.sampled_from(["collateral", "equity"]))
def test_partial_liquidation_restores_target_within_rounding(case, penalty_from):
    # any penalty rate: the shortfall stays under the derived bound less the 10 wei per position
    # of slack that num carries (f * den >= (num0 + 10 k) * WAD)
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale, penalty_from=penalty_from)
    assume(not r.full)
    after = account_health(r.collateral_after, after_positions(ps, r))
    shortfall = ceil_div(liq.liq_target * after.maintenance_req, WAD) - after.equity
    k = sum(1 for p in ps if p.size != 0)
    assert shortfall < exact_target_bound(ps, r, liq.liq_target) - 10 * k


@PROPS
@given(
    liq_cases(dust=True, safe=True),
    st.sampled_from(["position", "account"]),
    st.sampled_from(["collateral", "equity"]),
)
def test_partial_liquidation_target_with_safe_penalties(case, dust, penalty_from):
    # with liq_penalty <= mmf in every market (the contract's bound) and t <= 3, a partial
    # liquidation restores E' >= ceil(t M' / WAD) exactly, whatever the dust reading: by
    # exact_target_bound the shortfall is < 1 + k (2 t + 3) - 10 k <= 1 - k <= 0
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale, dust=dust, penalty_from=penalty_from)
    assume(not r.full)
    after = account_health(r.collateral_after, after_positions(ps, r))
    assert after.equity >= ceil_div(liq.liq_target * after.maintenance_req, WAD)
    assert not after.liquidatable


@PROPS
@given(liq_cases(dust=True))
def test_partial_liquidation_target_account_dust_mode(case):
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale, dust="account")
    assume(not r.full)
    for p, c in zip(ps, r.closed):  # no position was closed in full by the dust rule
        assert abs(c) * WAD < abs(p.size) * r.fraction + WAD
    after = account_health(r.collateral_after, after_positions(ps, r))
    shortfall = ceil_div(liq.liq_target * after.maintenance_req, WAD) - after.equity
    k = sum(1 for p in ps if p.size != 0)
    assert shortfall < exact_target_bound(ps, r, liq.liq_target) - 10 * k


@PROPS
@given(liq_cases(dust=True), st.sampled_from(["position", "account"]), st.sampled_from(["collateral", "equity"]))
def test_liquidation_conservation_and_bookkeeping(case, dust, penalty_from):
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale, dust=dust, penalty_from=penalty_from)
    reward_out = r.reward_tokens * scale
    # cash conservation: the account, the fund, the pool and the keeper's tokens sum to zero
    assert (r.collateral_after - collateral) + (r.insurance_after - insurance) + r.pool_delta + reward_out == 0
    assert r.pool_delta == -r.realized - r.written_off
    assert r.written_off == r.reward_shortfall + r.bad_debt_written_off
    assert r.bad_debt == r.bad_debt_insurance_paid + r.bad_debt_written_off
    # the fund, in the doc's order: + paid - the WHOLE reward (the pool covers a negative fund),
    # then the bad debt it can pay, then the sub-token remainder of the reward comes back
    fund = insurance + r.paid - r.reward
    assert r.reward_shortfall == max(-fund, 0)
    fund = max(fund, 0)
    assert r.bad_debt_insurance_paid == min(r.bad_debt, fund)
    remainder = r.reward - reward_out
    assert 0 <= remainder < scale
    assert r.insurance_after == fund - r.bad_debt_insurance_paid + remainder
    # net: + paid - reward (tokens) - bad debt, plus what the pool covered
    assert r.insurance_after == insurance + r.paid - reward_out - r.bad_debt + r.written_off >= 0
    # positions: closed + remaining == before; never grown or flipped; no cost without size
    for p, c, ns, nc in zip(ps, r.closed, r.new_sizes, r.new_costs):
        assert c + ns == p.size and abs(ns) <= abs(p.size) and ns * p.size >= 0
        assert ns != 0 or nc == 0
    assert r.full == all(ns == 0 for ns in r.new_sizes)
    assert (r.fraction == WAD) if r.full else (0 < r.fraction < WAD)
    # bad debt only once nothing is left; then the account owes nothing
    if r.bad_debt:
        assert r.full and r.collateral_after == 0 and r.paid == 0
    if r.full:
        assert r.collateral_after >= 0
    # penalty paid only from what is left after realized PnL and bad debt settlement
    coll_left = collateral + r.realized + r.bad_debt
    left = coll_left
    if penalty_from == "equity":
        left += sum(position_terms(p).U for p in after_positions(ps, r))
    assert r.paid == min(r.penalty, max(left, 0)) and r.collateral_after == coll_left - r.paid
    # the reward: clamped, then never more than the penalty
    assert r.reward <= r.penalty and r.reward <= liq.max_keeper_reward
    assert r.reward >= min(liq.min_keeper_reward, r.penalty)
    assert r.reward_tokens * scale <= r.reward < (r.reward_tokens + 1) * scale
    # self-liquidation: an account that paid its whole penalty never gets more back as its own
    # keeper than it paid
    if r.paid == r.penalty:
        assert reward_out <= r.paid
    # equity: closing at the oracle price costs the account only the penalty it paid (plus up to
    # one wei per partly closed position from the floor of V), bad debt restores it to zero
    e_before = account_health(collateral, ps).equity
    e_after = account_health(r.collateral_after, after_positions(ps, r)).equity
    drift = e_before - r.paid + r.bad_debt - e_after
    partly = sum(1 for c, ns in zip(r.closed, r.new_sizes) if c and ns)
    assert 0 <= drift <= partly


@PROPS
@given(liq_cases(dust=True))
def test_liquidation_penalty_up_reward_down(case):
    collateral, ps, liq, insurance, scale = case
    r = liquidate(collateral, ps, liq, insurance, scale=scale)
    exact_n = sum(Fraction(abs(c) * p.price, WAD) for p, c in zip(ps, r.closed))
    exact_pen = sum(Fraction(abs(c) * p.price * p.market.liq_penalty, W2) for p, c in zip(ps, r.closed))
    k = sum(1 for c in r.closed if c)
    assert exact_n <= r.closed_notional < exact_n + k + (k == 0)
    assert exact_pen <= r.penalty < exact_pen + 2 * k + (k == 0)
    # reward: the exact share rounded down, then clamped, then capped by the penalty and by what
    # the account paid (but for the floor)
    share = Fraction(liq.keeper_share * r.penalty, WAD)
    clamped = min(max(math.floor(share), liq.min_keeper_reward), liq.max_keeper_reward)
    cap = max(r.paid, liq.min_keeper_reward)
    assert r.reward == min(clamped, r.penalty, cap) <= r.penalty
    if liq.min_keeper_reward < r.reward < liq.max_keeper_reward and r.reward < min(r.penalty, cap):
        assert share - 1 < r.reward <= share
    # realized at the oracle price never beats the exact proportional PnL
    for p, c, re in zip(ps, r.closed, r.realized_each):
        if c:
            exact = Fraction(c * p.price, WAD) - Fraction(p.cost * c, p.size)
            assert exact - 2 < re <= exact


@PROPS
@given(positions(), st.integers(0, 10**25))
def test_healthy_account_is_not_liquidatable(pos, extra):
    assume(pos.size != 0)
    h = account_health(0, [pos])
    collateral = h.maintenance_req - h.equity + extra  # E = M + extra >= M
    assert not account_health(collateral, [pos]).liquidatable
    with pytest.raises(NotLiquidatable):
        liquidate(collateral, [pos], LiqParams(WAD, 0, 0, 0), 0)
    assert account_health(collateral - extra - 1, [pos]).liquidatable  # one wei below M


# =============================================================================================
# Properties: token edges
# =============================================================================================


@PROPS
@given(st.sampled_from([1, 10**10, 10**12]), st.data())
def test_engine_tokens_stay_exact(scale, data):
    others = data.draw(st.lists(st.integers(0, 10**30), min_size=1, max_size=3))
    insurance = data.draw(st.integers(0, 10**25))
    carry = (-(sum(others) + insurance)) % scale
    balance = (sum(others) + insurance + carry) // scale
    assert engine_token_invariant(balance, scale, others, insurance, carry)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["deposit", "withdraw", "pool", "reward", "liquidate"]))
        if kind == "deposit":
            i, a = data.draw(st.integers(0, len(others) - 1)), data.draw(st.integers(0, 10**12))
            others[i] += a * scale
            balance += a
        elif kind == "withdraw":
            i = data.draw(st.integers(0, len(others) - 1))
            a = data.draw(st.integers(0, max(others[i], 0) // scale))
            others[i] -= a * scale
            balance -= a
        elif kind == "pool":  # the pool gains (or pays) a WAD amount taken from (given to) account 0
            d = data.draw(st.integers(-(10**22), 10**22))
            others[0] -= d
            tokens, carry = settle_with_pool(carry, d, scale)
            balance -= tokens
        elif kind == "reward":  # the fund pays a keeper R WAD: R // scale tokens leave
            R = data.draw(st.integers(0, insurance))
            insurance -= (R // scale) * scale
            balance -= R // scale
        else:  # account 0 hands a WAD amount to a new account, which is then liquidated
            collateral, ps, liq, _, _ = data.draw(liq_cases())
            others[0] -= collateral
            others.append(collateral)
            assert engine_token_invariant(balance, scale, others, insurance, carry)
            r = liquidate(collateral, ps, liq, insurance, scale=scale)
            others[-1] = r.collateral_after
            insurance = r.insurance_after
            balance -= r.reward_tokens  # to the keeper
            tokens, carry = settle_with_pool(carry, r.pool_delta, scale)
            balance -= tokens
        assert engine_token_invariant(balance, scale, others, insurance, carry)
        assert 0 <= carry < scale
