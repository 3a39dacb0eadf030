"""The oracle's optional second feed (DESIGN 6): used only when the first feed is stale or invalid,
and only within a maximum deviation from the first feed's last good answer."""

import ape
import pytest

from helpers import ETH, WAD

ZERO = "0x" + "00" * 20
HEARTBEAT = 3600
FALLBACK_HEARTBEAT = 600
MAX_DEV = 2 * 10**16  # 2%


@pytest.fixture
def feeds(project, deployer):
    primary = project.MockAggregator.deploy(8, 2000 * 10**8, "ETH / USD", sender=deployer)
    second = project.MockAggregator.deploy(18, 2010 * WAD, "ETH / USD 2", sender=deployer)
    return primary, second


@pytest.fixture
def oracle(project, deployer, feeds):
    primary, second = feeds
    return project.ChainlinkOracle.deploy(primary, HEARTBEAT, ZERO, 0, second, FALLBACK_HEARTBEAT, MAX_DEV, sender=deployer)


def go_stale(chain, primary, deployer):
    """Lets the first feed's answer age past its heartbeat."""
    chain.mine(timestamp=chain.pending_timestamp + HEARTBEAT + 1)


def test_fresh_first_feed__wins_even_if_the_second_disagrees(oracle, feeds, deployer):
    primary, second = feeds
    second.set_answer(1500 * WAD, sender=deployer)  # 25% off, irrelevant while the first is good
    assert oracle.price() == 2000 * WAD
    assert oracle.latest()[0] == 2000 * WAD and oracle.latest()[2]


def test_stale_first_feed__second_within_deviation__is_used(oracle, feeds, chain, deployer):
    primary, second = feeds
    go_stale(chain, primary, deployer)
    second.set_answer(2030 * WAD, sender=deployer)  # 1.5% above the first's last answer
    assert oracle.price() == 2030 * WAD
    price, updated_at, ok = oracle.latest()
    assert (price, ok) == (2030 * WAD, True) and updated_at == second.latestRoundData()[3]


def test_stale_first_feed__second_at_exactly_max_deviation__passes_and_one_wei_more_fails(oracle, feeds, chain, deployer):
    primary, second = feeds
    go_stale(chain, primary, deployer)
    edge = 2000 * WAD * (WAD + MAX_DEV) // WAD  # 2040
    second.set_answer(edge, sender=deployer)
    assert oracle.price() == edge
    second.set_answer(edge + 1, sender=deployer)
    with ape.reverts("oracle: fallback deviation"):
        oracle.price()
    assert oracle.latest()[2] is False
    low = 2000 * WAD * (WAD - MAX_DEV) // WAD
    second.set_answer(low, sender=deployer)
    assert oracle.price() == low
    second.set_answer(low - 1, sender=deployer)
    with ape.reverts("oracle: fallback deviation"):
        oracle.price()


def test_stale_first_feed__stale_or_invalid_second__reverts_stale(oracle, feeds, chain, deployer):
    primary, second = feeds
    go_stale(chain, primary, deployer)  # the second (set at deploy) is now stale as well
    with ape.reverts("oracle: stale"):
        oracle.price()
    assert oracle.latest()[2] is False
    second.set_answer(0, sender=deployer)
    with ape.reverts("oracle: stale"):
        oracle.price()


def test_invalid_first_answer__compared_with_its_last_good_round(oracle, feeds, deployer):
    primary, second = feeds
    primary.set_answer(1900 * 10**8, sender=deployer)  # a good round
    primary.set_answer(0, sender=deployer)  # then an invalid one
    second.set_answer(1910 * WAD, sender=deployer)  # within 2% of 1900 (not of 2000's round)
    assert oracle.price() == 1910 * WAD
    second.set_answer(1960 * WAD, sender=deployer)  # within 2% of 2000 but not of 1900
    with ape.reverts("oracle: fallback deviation"):
        oracle.price()


def test_invalid_first_answer__no_good_round_to_compare__reverts_invalid(project, deployer):
    primary = project.MockAggregator.deploy(8, -1, "broken", sender=deployer)
    second = project.MockAggregator.deploy(8, 2000 * 10**8, "second", sender=deployer)
    oracle = project.ChainlinkOracle.deploy(primary, HEARTBEAT, ZERO, 0, second, FALLBACK_HEARTBEAT, MAX_DEV, sender=deployer)
    with ape.reverts("oracle: invalid answer"):
        oracle.price()
    assert oracle.latest() == (0, primary.latestRoundData()[3], False)


def test_invalid_first_answer__invalid_second__reverts_invalid(oracle, feeds, deployer):
    primary, second = feeds
    primary.set_answer(-5, sender=deployer)
    second.set_answer(0, sender=deployer)
    with ape.reverts("oracle: invalid answer"):
        oracle.price()


def test_without_fallback__reasons_unchanged(project, deployer, feeds, chain):
    primary, _ = feeds
    oracle = project.ChainlinkOracle.deploy(primary, HEARTBEAT, ZERO, 0, ZERO, 0, 0, sender=deployer)
    assert oracle.fallback_feed() == ZERO
    go_stale(chain, primary, deployer)
    with ape.reverts("oracle: stale"):
        oracle.price()


@pytest.mark.parametrize(
    "args,reason",
    [
        (("same", FALLBACK_HEARTBEAT, MAX_DEV), "oracle: same fallback"),
        (("second", 0, MAX_DEV), "oracle: zero heartbeat"),
        (("second", FALLBACK_HEARTBEAT, 0), "oracle: deviation"),
        (("second", FALLBACK_HEARTBEAT, 5 * 10**17 + 1), "oracle: deviation"),
    ],
)
def test_constructor__bad_fallback__reverts(project, accounts, feeds, args, reason):
    primary, second = feeds
    feed = primary if args[0] == "same" else second
    with ape.reverts(reason):
        project.ChainlinkOracle.deploy(primary, HEARTBEAT, ZERO, 0, feed, args[1], args[2], sender=accounts[17])


def test_constructor__fallback_getters(oracle, feeds):
    _, second = feeds
    assert (oracle.fallback_feed(), oracle.fallback_heartbeat(), oracle.max_deviation(), oracle.fallback_decimals()) == (
        second.address,
        FALLBACK_HEARTBEAT,
        MAX_DEV,
        18,
    )


def test_engine__trades_on_the_fallback_while_the_first_feed_is_stale(env, project, deployer, trader, chain):
    """A market whose oracle has a fallback keeps trading (and liquidating) through a stale feed."""
    primary, second = env.feeds[ETH], project.MockAggregator.deploy(8, 2000 * 10**8, "ETH 2", sender=deployer)
    oracle = project.ChainlinkOracle.deploy(primary, HEARTBEAT, ZERO, 0, second, FALLBACK_HEARTBEAT, MAX_DEV, sender=deployer)
    env.config.add_market(oracle.address, env.engine.market(ETH).params, env.config.brackets(ETH), sender=deployer)
    market = env.engine.n_markets() - 1
    env.fund(trader, 1000)
    go_stale(chain, primary, deployer)
    with ape.reverts("oracle: stale"):
        env.engine.trade(ETH, WAD, 2**256 - 1, sender=trader)  # the market without a fallback stops
    second.set_answer(2010 * 10**8, sender=deployer)
    env.engine.trade(market, WAD, 2**256 - 1, sender=trader)
    assert env.engine.price(market) == 2010 * WAD
    assert env.engine.position(trader.address, market).size == WAD


def test_deploy_config__fallback_feed_is_deployed_and_checked(project, chain, deployer):
    from _deploy import ConfigError, DeployConfig, deploy
    from helpers import base_config

    raw = base_config().model_dump(mode="python")
    raw["markets"][ETH].update(fallback_feed={"decimals": 8, "answer": 2001}, fallback_heartbeat=600, max_deviation="0.02")
    record = deploy(DeployConfig.model_validate(raw), deployer, project, chain, local=True)
    oracle = project.ChainlinkOracle.at(record["markets"][ETH]["oracle"])
    assert oracle.fallback_feed() == record["mocks"]["fallback:ETH-USD"]
    assert (oracle.fallback_heartbeat(), oracle.max_deviation()) == (600, 2 * 10**16)
    raw["markets"][ETH].update(fallback_heartbeat=0)
    with pytest.raises(ValueError, match="fallback feed needs fallback_heartbeat"):
        DeployConfig.model_validate(raw)
    assert issubclass(ConfigError, ValueError)
