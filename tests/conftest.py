"""Shared fixtures: actors by role, a deployed protocol (through the deploy script's own code), and
the solvency check after tests that move money. Helpers live in tests/helpers.py."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import Env, assert_solvent, base_config, make_env  # noqa: E402


# ACTORS #


@pytest.fixture(scope="session")
def deployer(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def guardian(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def lp(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def liquidator(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def trader(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def trader2(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def traders(accounts):
    return [accounts[i] for i in range(6, 10)]


# PROTOCOL #


@pytest.fixture(scope="module")
def env(project, chain, deployer, lp):
    """The default deployment (mock USDC, ETH-USD at 2000, BTC-USD at 60000), pool seeded with 1M."""
    return make_env(project, chain, deployer, lp, base_config())


@pytest.fixture(autouse=True)
def _solvent_after_every_test(request):
    """After every test, each deployment the test used must hold exactly what it owes:
    engine_balance * scale == sum(collateral) + insurance + pool_owed, pool assets == balance."""
    yield
    for name in request.fixturenames:
        value = request.node.funcargs.get(name)
        if isinstance(value, Env):
            assert_solvent(value)


@pytest.fixture
def solvent(env):
    """Names the intent in a test that moves money; the check itself runs after every test."""
    return env


# TEST SPEED #


@pytest.fixture(scope="session", autouse=True)
def _fast_reverts():
    """Cuts Ape's handling of a revert from about 1 s to a few ms: on every revert Ape re-derives the
    test accounts to label the call trace (deterministic, so cached here) and maps the revert onto
    Vyper source lines for a pretty traceback (skipped). The revert reason that `ape.reverts`
    checks is unaffected."""
    from ape.exceptions import TransactionError
    from ape.managers.compilers import CompilerManager
    from ape_test.accounts import TestAccountContainer

    original = TestAccountContainer.get_test_account
    cache: dict = {}

    def get_test_account(self, index):
        key = (self.mnemonic, index)
        if key not in cache:
            cache[key] = original(self, index)
        return cache[key]

    patch = pytest.MonkeyPatch()
    patch.setattr(TestAccountContainer, "get_test_account", get_test_account)
    patch.setattr(TransactionError, "with_ape_traceback", lambda self: self)
    # the compiler plugin's error enrichment maps every revert onto source lines (for dev messages,
    # which these tests do not use): skipped
    patch.setattr(CompilerManager, "enrich_error", lambda self, err: err)
    yield
    patch.undo()


@pytest.fixture(scope="module", autouse=True)
def _actors(deployer, guardian, lp, liquidator, trader, trader2, traders):
    """Creates every session-scoped actor before a module's deployment: Ape's isolation wants wider
    fixtures first, or it warns and snapshots again."""


@pytest.fixture(scope="module")
def adv(project, chain, deployer, lp):
    """The default deployment with its advanced margin kept (config/local.yaml's brackets, the
    volatility term and funding), pool seeded with 1M."""
    return make_env(project, chain, deployer, lp, base_config(advanced=True))
