"""Fixtures for the oracle and mock tests (imported by test_oracle.py and test_mocks.py); the
actors deployer, trader and lp come from conftest.py.

Kept out of conftest.py, which the lead owns. Actor account indices match conftest.py where
the roles coincide (deployer 0, lp 2, trader 4).
"""

import pytest

# Chainlink-like defaults used across the oracle tests.
HEARTBEAT = 3_600
GRACE_PERIOD = 3_600
ETH_USD = 3_000  # whole dollars; scaled to the feed's decimals by `answer_for`
SEQUENCER_UP = 0
SEQUENCER_DOWN = 1
WAD = 10**18
ZERO = "0x0000000000000000000000000000000000000000"


def answer_for(dollars: int, decimals: int) -> int:
    """A feed answer of `dollars` USD at `decimals` precision."""
    return dollars * 10**decimals


@pytest.fixture(scope="session")
def keeper(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def sanctioned(accounts):
    """An account that gets blacklisted by the USDC mock."""
    return accounts[7]


@pytest.fixture
def make_feed(project, deployer):
    """Deploys a MockAggregator; `make_feed(decimals, answer)`."""

    def _make(decimals: int = 8, answer: int | None = None, description: str = "ETH / USD"):
        if answer is None:
            answer = answer_for(ETH_USD, decimals)
        return project.MockAggregator.deploy(decimals, answer, description, sender=deployer)

    return _make


@pytest.fixture
def make_oracle(project, deployer):
    """Deploys a ChainlinkOracle; `make_oracle(feed, heartbeat, sequencer_feed, grace)`."""

    def _make(feed, heartbeat: int = HEARTBEAT, sequencer_feed=None, grace_period: int = GRACE_PERIOD):
        seq = sequencer_feed.address if sequencer_feed is not None else "0x" + "00" * 20
        return project.ChainlinkOracle.deploy(feed, heartbeat, seq, grace_period, ZERO, 0, 0, sender=deployer)

    return _make


@pytest.fixture
def feed(make_feed):
    """An 8-decimal ETH / USD feed at 3000 USD."""
    return make_feed(8)


@pytest.fixture
def oracle(make_oracle, feed):
    """An oracle on `feed`, no sequencer check."""
    return make_oracle(feed)


@pytest.fixture
def sequencer(make_feed, chain, deployer):
    """A sequencer uptime feed that has been up for ten grace periods."""
    seq = make_feed(0, SEQUENCER_UP, "L2 Sequencer Uptime Status Feed")
    seq.set_round(SEQUENCER_UP, chain.pending_timestamp - 10 * GRACE_PERIOD, sender=deployer)
    return seq


@pytest.fixture
def l2_oracle(make_oracle, feed, sequencer):
    """An oracle on `feed` guarded by `sequencer`."""
    return make_oracle(feed, sequencer_feed=sequencer)
