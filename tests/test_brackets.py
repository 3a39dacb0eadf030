"""Maintenance brackets (contracts/modules/brackets.vy): continuous at every edge, never decreasing,
convex, floored by the volatility term, and checked on the way in; against tests/model.py."""

import ape
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import model

WAD = 10**18
MAX = 2**256 - 1
MIN_MMF, MAX_MMF = 10**15, 5 * 10**17
# a typical table: 0-1M at 5%, 1-5M at 7.5%, 5-20M at 10%, above at 20%
TABLE = [(10**6 * WAD, 5 * 10**16), (5 * 10**6 * WAD, 75 * 10**15), (20 * 10**6 * WAD, 10**17), (MAX, 2 * 10**17)]


@pytest.fixture(scope="module")
def br(project, deployer):
    return project.BracketsHarness.deploy(sender=deployer)


@st.composite
def tables(draw):
    n = draw(st.integers(1, 8))
    caps = sorted(draw(st.lists(st.integers(WAD, 10**9 * WAD), min_size=n - 1, max_size=n - 1, unique=True)))
    mmfs = sorted(draw(st.lists(st.integers(MIN_MMF, MAX_MMF), min_size=n, max_size=n)))
    return list(zip(caps + [MAX], mmfs))


def test_one_bracket__equals_the_flat_fraction(br):
    n = 123_456 * WAD + 789
    assert br.maintenance(n, [(MAX, 5 * 10**16)], 0) == model.ceil_div(n * 5 * 10**16, WAD)


def test_table__by_hand(br):
    # 7M notional: 1M * 5% + 4M * 7.5% + 2M * 10% = 50k + 300k + 200k = 550k
    assert br.maintenance(7 * 10**6 * WAD, TABLE, 0) == 550_000 * WAD
    # with a 9% volatility floor: 1M * 9% + 4M * 9% + 2M * 10% = 90k + 360k + 200k = 650k
    assert br.maintenance(7 * 10**6 * WAD, TABLE, 9 * 10**16) == 650_000 * WAD


def test_bracket_edge__no_jump(br):
    for cap, _ in TABLE[:-1]:
        below, at, above = (br.maintenance(cap + d, TABLE, 0) for d in (-WAD, 0, WAD))
        # one more dollar of notional costs that dollar's fraction, never a step
        assert at - below <= 10**17 + 1 and above - at <= 2 * 10**17 + 1


@settings(max_examples=200, deadline=None)
@given(table=tables(), a=st.integers(0, 10**10 * WAD), b=st.integers(0, 10**10 * WAD), vol=st.integers(0, MAX_MMF))
def test_any_table__matches_model_monotone_and_convex(br, table, a, b, vol):
    lo, hi = min(a, b), max(a, b)
    m_lo, m_hi = br.maintenance(lo, table, vol), br.maintenance(hi, table, vol)
    assert m_lo == model.bracket_maintenance(lo, table, vol)
    assert m_hi == model.bracket_maintenance(hi, table, vol)
    assert m_lo <= m_hi  # a bigger position never needs less
    if lo > 0:
        assert m_lo * hi <= m_hi * lo + hi  # MM(N) / N never falls (to a wei of rounding)
    assert br.check(table, MIN_MMF, MAX_MMF)


@pytest.mark.parametrize(
    "table,reason",
    [
        ([], "brackets: empty"),
        ([(10**6 * WAD, 5 * 10**16)], "brackets: last cap"),
        ([(10**6 * WAD, 5 * 10**16), (10**6 * WAD, 6 * 10**16), (MAX, 7 * 10**16)], "brackets: caps must rise"),
        ([(10**6 * WAD, 5 * 10**16), (MAX, 4 * 10**16)], "brackets: mmf must not fall"),
        ([(MAX, MIN_MMF - 1)], "brackets: mmf out of bounds"),
        ([(10**6 * WAD, 5 * 10**16), (MAX, MAX_MMF + 1)], "brackets: mmf out of bounds"),
    ],
)
def test_check__bad_tables__revert(br, table, reason):
    with ape.reverts(reason):
        br.check(table, MIN_MMF, MAX_MMF)
