"""ChainlinkOracle: scaling, every revert reason, and latest() never reverting."""

import ape
import pytest

from fixtures_oracle import (  # noqa: F401  (fixtures are used by name)
    ETH_USD,
    GRACE_PERIOD,
    HEARTBEAT,
    SEQUENCER_DOWN,
    SEQUENCER_UP,
    WAD,
    answer_for,
    feed,
    keeper,
    l2_oracle,
    make_feed,
    make_oracle,
    oracle,
    sequencer,
)

ZERO_ADDRESS = "0x" + "00" * 20
INT256_MAX = 2**255 - 1


def _head(chain) -> int:
    return chain.blocks.head.timestamp


# --- constructor ---------------------------------------------------------------------------


def test_constructor__stores_config_and_caches_decimals(make_oracle, make_feed, sequencer):
    feed6 = make_feed(6)
    oracle = make_oracle(feed6, heartbeat=86_400, sequencer_feed=sequencer, grace_period=1_800)
    assert oracle.feed() == feed6.address
    assert oracle.heartbeat() == 86_400
    assert oracle.sequencer_feed() == sequencer.address
    assert oracle.grace_period() == 1_800
    assert oracle.feed_decimals() == 6


def test_constructor__without_sequencer__stores_empty_sequencer(oracle):
    assert oracle.sequencer_feed() == ZERO_ADDRESS
    assert oracle.feed_decimals() == 8


def test_constructor__zero_feed__reverts(project, deployer):
    with ape.reverts("oracle: zero feed"):
        project.ChainlinkOracle.deploy(ZERO_ADDRESS, HEARTBEAT, ZERO_ADDRESS, 0, ZERO_ADDRESS, 0, 0, sender=deployer)


def test_constructor__zero_heartbeat__reverts(project, deployer, feed):
    with ape.reverts("oracle: zero heartbeat"):
        project.ChainlinkOracle.deploy(feed, 0, ZERO_ADDRESS, 0, ZERO_ADDRESS, 0, 0, sender=deployer)


def test_constructor__more_than_36_decimals__reverts(project, deployer, make_feed):
    feed37 = make_feed(37, 1)
    with ape.reverts("oracle: decimals"):
        project.ChainlinkOracle.deploy(feed37, HEARTBEAT, ZERO_ADDRESS, 0, ZERO_ADDRESS, 0, 0, sender=deployer)


# --- scaling -------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_price__fresh_answer__is_scaled_to_wad(make_feed, make_oracle, decimals):
    oracle = make_oracle(make_feed(decimals))
    assert oracle.price() == ETH_USD * WAD


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_price__fractional_answer__keeps_every_feed_digit(make_feed, make_oracle, decimals):
    # 1234.5 plus one unit of the feed's last decimal
    answer = 12_345 * 10 ** (decimals - 1) + 1
    oracle = make_oracle(make_feed(decimals, answer))
    assert oracle.price() == answer * 10 ** (18 - decimals)


@pytest.mark.parametrize("decimals", [24, 36])
def test_price__more_than_18_decimals__divides_and_rounds_down(make_feed, make_oracle, decimals):
    answer = answer_for(ETH_USD, decimals) + 10 ** (decimals - 18) - 1  # sub-WAD dust
    oracle = make_oracle(make_feed(decimals, answer))
    assert oracle.price() == ETH_USD * WAD


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_price__follows_new_rounds(make_feed, make_oracle, deployer, decimals):
    feed = make_feed(decimals)
    oracle = make_oracle(feed)
    feed.set_answer(answer_for(2_500, decimals), sender=deployer)
    assert oracle.price() == 2_500 * WAD


def test_price__smallest_positive_answer__is_accepted(make_feed, make_oracle):
    oracle = make_oracle(make_feed(8, 1))
    assert oracle.price() == 10**10


def test_price__answer_overflowing_wad__reverts(make_feed, make_oracle):
    oracle = make_oracle(make_feed(8, INT256_MAX))
    with ape.reverts():
        oracle.price()


# --- invalid answer ------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [0, -1, -(10**8)])
def test_price__non_positive_answer__reverts_invalid_answer(feed, oracle, deployer, answer):
    feed.set_answer(answer, sender=deployer)
    with ape.reverts("oracle: invalid answer"):
        oracle.price()


# --- staleness -----------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_price__answer_exactly_heartbeat_old__is_accepted(make_feed, make_oracle, deployer, chain, decimals):
    feed = make_feed(decimals)
    oracle = make_oracle(feed)
    updated_at = chain.pending_timestamp
    feed.set_round(answer_for(ETH_USD, decimals), updated_at, sender=deployer)
    chain.mine(timestamp=updated_at + HEARTBEAT)
    assert _head(chain) - updated_at == HEARTBEAT
    assert oracle.price() == ETH_USD * WAD


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_price__answer_heartbeat_plus_one_old__reverts_stale(make_feed, make_oracle, deployer, chain, decimals):
    feed = make_feed(decimals)
    oracle = make_oracle(feed)
    updated_at = chain.pending_timestamp
    feed.set_round(answer_for(ETH_USD, decimals), updated_at, sender=deployer)
    chain.mine(timestamp=updated_at + HEARTBEAT + 1)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_price__custom_heartbeat__sets_the_staleness_boundary(make_feed, make_oracle, deployer, chain):
    feed = make_feed(8)
    oracle = make_oracle(feed, heartbeat=60)
    updated_at = chain.pending_timestamp
    feed.set_round(answer_for(ETH_USD, 8), updated_at, sender=deployer)
    chain.mine(timestamp=updated_at + 60)
    assert oracle.price() == ETH_USD * WAD
    chain.mine(timestamp=updated_at + 61)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_price__updated_at_in_the_future__reverts_stale(feed, oracle, deployer, chain):
    feed.set_round(answer_for(ETH_USD, 8), chain.pending_timestamp + 1_000, sender=deployer)
    assert feed.latestRoundData()[3] > _head(chain)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_price__updated_at_one_second_ahead__reverts_stale(feed, oracle, deployer, chain):
    head = chain.pending_timestamp
    feed.set_round(answer_for(ETH_USD, 8), head + 10, sender=deployer)
    chain.mine(timestamp=head + 9)
    with ape.reverts("oracle: stale"):
        oracle.price()
    chain.mine(timestamp=head + 10)
    assert oracle.price() == ETH_USD * WAD


def test_price__updated_at_zero__reverts_stale(feed, oracle, deployer):
    feed.set_round(answer_for(ETH_USD, 8), 0, sender=deployer)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_price__updated_at_zero_with_huge_heartbeat__still_reverts_stale(make_feed, make_oracle, deployer):
    feed = make_feed(8)
    oracle = make_oracle(feed, heartbeat=2**256 - 1)
    feed.set_round(answer_for(ETH_USD, 8), 0, sender=deployer)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_price__future_updated_at_with_huge_heartbeat__still_reverts_stale(make_feed, make_oracle, deployer, chain):
    feed = make_feed(8)
    oracle = make_oracle(feed, heartbeat=2**256 - 1)
    feed.set_round(answer_for(ETH_USD, 8), chain.pending_timestamp + 1_000, sender=deployer)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_price__invalid_answer_is_reported_before_staleness(feed, oracle, deployer):
    feed.set_round(0, 0, sender=deployer)
    with ape.reverts("oracle: invalid answer"):
        oracle.price()


def test_price__reverting_feed__reverts(feed, oracle, deployer):
    feed.set_broken(True, sender=deployer)
    with ape.reverts("aggregator: broken"):
        oracle.price()


# --- sequencer -----------------------------------------------------------------------------


def test_price__sequencer_up_past_grace__returns_price(l2_oracle):
    assert l2_oracle.price() == ETH_USD * WAD


def test_price__sequencer_down__reverts_sequencer_down(l2_oracle, sequencer, deployer):
    sequencer.set_answer(SEQUENCER_DOWN, sender=deployer)
    with ape.reverts("oracle: sequencer down"):
        l2_oracle.price()


def test_price__sequencer_down_for_long__still_reverts(l2_oracle, sequencer, feed, deployer, chain):
    sequencer.set_round(SEQUENCER_DOWN, chain.pending_timestamp - 10 * GRACE_PERIOD, sender=deployer)
    feed.set_answer(answer_for(ETH_USD, 8), sender=deployer)
    with ape.reverts("oracle: sequencer down"):
        l2_oracle.price()


def test_price__sequencer_round_started_at_zero__reverts_sequencer_down(l2_oracle, sequencer, deployer):
    sequencer.set_round(SEQUENCER_UP, 0, sender=deployer)
    with ape.reverts("oracle: sequencer down"):
        l2_oracle.price()


def test_price__sequencer_down_is_reported_before_stale_feed(l2_oracle, sequencer, feed, deployer):
    feed.set_round(answer_for(ETH_USD, 8), 0, sender=deployer)
    sequencer.set_answer(SEQUENCER_DOWN, sender=deployer)
    with ape.reverts("oracle: sequencer down"):
        l2_oracle.price()


def test_price__sequencer_just_back_up__reverts_grace_period(l2_oracle, sequencer, deployer):
    sequencer.set_answer(SEQUENCER_UP, sender=deployer)
    with ape.reverts("oracle: grace period"):
        l2_oracle.price()


def test_price__sequencer_up_exactly_grace_period__reverts_then_one_second_later_returns_price(
    l2_oracle, sequencer, feed, deployer, chain
):
    back_up_at = chain.pending_timestamp
    sequencer.set_round(SEQUENCER_UP, back_up_at, sender=deployer)
    # keep the price itself fresh at the boundary
    feed.set_round(answer_for(ETH_USD, 8), back_up_at + GRACE_PERIOD, sender=deployer)
    chain.mine(timestamp=back_up_at + GRACE_PERIOD)
    with ape.reverts("oracle: grace period"):
        l2_oracle.price()
    chain.mine(timestamp=back_up_at + GRACE_PERIOD + 1)
    assert l2_oracle.price() == ETH_USD * WAD


def test_price__sequencer_status_change_in_future__reverts_grace_period(l2_oracle, sequencer, deployer, chain):
    sequencer.set_round(SEQUENCER_UP, chain.pending_timestamp + 100, sender=deployer)
    with ape.reverts("oracle: grace period"):
        l2_oracle.price()


def test_price__zero_grace_period__accepts_from_the_next_second(make_oracle, feed, sequencer, deployer, chain):
    oracle = make_oracle(feed, sequencer_feed=sequencer, grace_period=0)
    back_up_at = chain.pending_timestamp
    sequencer.set_round(SEQUENCER_UP, back_up_at, sender=deployer)
    feed.set_round(answer_for(ETH_USD, 8), back_up_at, sender=deployer)
    chain.mine(timestamp=back_up_at)
    with ape.reverts("oracle: grace period"):
        oracle.price()
    chain.mine(timestamp=back_up_at + 1)
    assert oracle.price() == ETH_USD * WAD


def test_price__without_sequencer_feed__ignores_sequencer(oracle, sequencer, deployer):
    sequencer.set_answer(SEQUENCER_DOWN, sender=deployer)
    assert oracle.price() == ETH_USD * WAD


# --- latest() ------------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [6, 8, 18, 24])
def test_latest__fresh_answer__matches_price_and_is_ok(make_feed, make_oracle, deployer, decimals):
    feed = make_feed(decimals)
    oracle = make_oracle(feed)
    feed.set_answer(answer_for(1_234, decimals) + 7, sender=deployer)
    price, updated_at, ok = oracle.latest()
    assert ok is True
    assert price == oracle.price()
    assert updated_at == feed.latestRoundData()[3]


def test_latest__sequencer_up_past_grace__matches_price_and_is_ok(l2_oracle, feed):
    assert l2_oracle.latest() == (l2_oracle.price(), feed.latestRoundData()[3], True)


def test_latest__exactly_heartbeat_old__is_ok(feed, oracle, deployer, chain):
    updated_at = chain.pending_timestamp
    feed.set_round(answer_for(ETH_USD, 8), updated_at, sender=deployer)
    chain.mine(timestamp=updated_at + HEARTBEAT)
    assert oracle.latest() == (ETH_USD * WAD, updated_at, True)


def test_latest__stale__returns_stale_price_not_ok(feed, oracle, deployer, chain):
    updated_at = chain.pending_timestamp
    feed.set_round(answer_for(ETH_USD, 8), updated_at, sender=deployer)
    chain.mine(timestamp=updated_at + HEARTBEAT + 1)
    assert oracle.latest() == (ETH_USD * WAD, updated_at, False)


def test_latest__future_updated_at__not_ok(feed, oracle, deployer, chain):
    future = chain.pending_timestamp + 1_000
    feed.set_round(answer_for(ETH_USD, 8), future, sender=deployer)
    assert oracle.latest() == (ETH_USD * WAD, future, False)


def test_latest__zero_updated_at__not_ok(feed, oracle, deployer):
    feed.set_round(answer_for(ETH_USD, 8), 0, sender=deployer)
    assert oracle.latest() == (ETH_USD * WAD, 0, False)


@pytest.mark.parametrize("future", [False, True])
def test_latest__zero_or_future_updated_at_with_huge_heartbeat__not_ok(
    make_feed, make_oracle, deployer, chain, future
):
    feed = make_feed(8)
    oracle = make_oracle(feed, heartbeat=2**256 - 1)
    updated_at = chain.pending_timestamp + 1_000 if future else 0
    feed.set_round(answer_for(ETH_USD, 8), updated_at, sender=deployer)
    assert oracle.latest() == (ETH_USD * WAD, updated_at, False)


@pytest.mark.parametrize("answer", [0, -1])
def test_latest__non_positive_answer__returns_zero_price_not_ok(feed, oracle, deployer, answer):
    feed.set_answer(answer, sender=deployer)
    assert oracle.latest() == (0, feed.latestRoundData()[3], False)


def test_latest__answer_overflowing_wad__returns_zero_price_not_ok(make_feed, make_oracle):
    feed = make_feed(8, INT256_MAX)
    oracle = make_oracle(feed)
    assert oracle.latest() == (0, feed.latestRoundData()[3], False)


def test_latest__reverting_feed__returns_zeros_not_ok(feed, oracle, deployer):
    feed.set_broken(True, sender=deployer)
    assert oracle.latest() == (0, 0, False)


def test_latest__sequencer_just_went_down__returns_price_not_ok(l2_oracle, sequencer, feed, deployer):
    sequencer.set_answer(SEQUENCER_DOWN, sender=deployer)
    assert l2_oracle.latest() == (ETH_USD * WAD, feed.latestRoundData()[3], False)


def test_latest__sequencer_down_for_long__returns_price_not_ok(l2_oracle, sequencer, feed, deployer, chain):
    # down since long before the grace period: only the status itself can flag it
    sequencer.set_round(SEQUENCER_DOWN, chain.pending_timestamp - 10 * GRACE_PERIOD, sender=deployer)
    assert l2_oracle.latest() == (ETH_USD * WAD, feed.latestRoundData()[3], False)


def test_latest__sequencer_started_at_zero__not_ok(l2_oracle, sequencer, deployer):
    sequencer.set_round(SEQUENCER_UP, 0, sender=deployer)
    assert l2_oracle.latest()[2] is False


def test_latest__grace_period_boundary__not_ok_then_ok(l2_oracle, sequencer, feed, deployer, chain):
    back_up_at = chain.pending_timestamp
    sequencer.set_round(SEQUENCER_UP, back_up_at, sender=deployer)
    feed.set_round(answer_for(ETH_USD, 8), back_up_at + GRACE_PERIOD, sender=deployer)
    chain.mine(timestamp=back_up_at + GRACE_PERIOD)
    assert l2_oracle.latest() == (ETH_USD * WAD, back_up_at + GRACE_PERIOD, False)
    chain.mine(timestamp=back_up_at + GRACE_PERIOD + 1)
    assert l2_oracle.latest() == (ETH_USD * WAD, back_up_at + GRACE_PERIOD, True)


def test_latest__sequencer_status_change_in_future__not_ok(l2_oracle, sequencer, deployer, chain):
    sequencer.set_round(SEQUENCER_UP, chain.pending_timestamp + 100, sender=deployer)
    assert l2_oracle.latest()[2] is False


def test_latest__reverting_sequencer_feed__not_ok(l2_oracle, sequencer, feed, deployer):
    sequencer.set_broken(True, sender=deployer)
    assert l2_oracle.latest() == (ETH_USD * WAD, feed.latestRoundData()[3], False)
    with ape.reverts("aggregator: broken"):
        l2_oracle.price()


def test_latest__sequencer_feed_without_code__not_ok(make_oracle, feed, trader):
    oracle = make_oracle(feed, sequencer_feed=trader)
    assert oracle.latest()[2] is False
    with ape.reverts():
        oracle.price()


def test_latest__sequencer_feed_returning_short_data__not_ok(make_oracle, project, feed, deployer):
    # a contract without latestRoundData and no fallback: the call fails
    not_a_feed = project.MockUSDT.deploy(sender=deployer)
    oracle = make_oracle(feed, sequencer_feed=not_a_feed)
    assert oracle.latest()[2] is False


# --- gas -----------------------------------------------------------------------------------


def test_price__8_decimal_feed_without_sequencer__gas_within_budget(project, make_feed, make_oracle, keeper):
    probe = project.OracleGasProbe.deploy(sender=keeper)
    # separate feeds so that each measurement starts with cold accounts and slots
    feed_for_oracle, bare_feed = make_feed(8), make_feed(8)
    oracle = make_oracle(feed_for_oracle)
    probe.measure_price(oracle, sender=keeper)
    probe.measure_feed(bare_feed, sender=keeper)
    assert probe.last_price() == ETH_USD * WAD
    cold, warm, feed_read = probe.cold_gas(), probe.warm_gas(), probe.feed_gas()
    adapter_cold = cold - feed_read - 2_600  # minus the feed read and the oracle's cold account
    print(
        f"\nChainlinkOracle.price() 8 decimals, no sequencer: cold {cold}, warm {warm}; "
        f"bare MockAggregator.latestRoundData() cold {feed_read}; adapter overhead {adapter_cold}"
    )
    assert warm < cold
    assert adapter_cold < 1_500
