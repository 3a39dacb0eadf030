"""The fork suite: `ape test tests/fork --network ethereum:mainnet-fork:foundry` (and the Sepolia deploy
test with `--network ethereum:sepolia-fork:foundry`).

Upstream: the RPC URL in BALLAST_FORK_URL (mainnet; BALLAST_SEPOLIA_FORK_URL for Sepolia) when set,
otherwise a local anvil with the real chain id seeded with stand-ins (tests/fork/upstream.py). The
upstream is chosen in `pytest_configure`, before Ape connects (Ape connects once collection is
finished): its URL becomes the `node` provider's URI for the upstream network, which is what
ape-foundry forks (`foundry.fork.ethereum.<network>.upstream_provider: node` in ape-config.yaml).

Collection: this directory is collected only when the network is one of the fork networks above, so
the main suite (`ape test tests`, local network) never picks it up; on the Sepolia fork only the
`test_sepolia_*` modules are collected, and only the others on the mainnet fork.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from upstream import CHAINS, RPC, Artifacts, ChainSpec, LocalUpstream, upstream_url  # noqa: E402

SEPOLIA_PREFIX = "test_sepolia"
UPSTREAM = pytest.StashKey[tuple[ChainSpec, str, "LocalUpstream | None"]]()


def fork_spec(config: pytest.Config) -> ChainSpec | None:
    """The chain of the fork network chosen with --network, or None when it is not a fork we run."""
    try:
        choice = config.getoption("--network") or ""
    except ValueError:  # plain pytest without Ape's plugin
        return None
    return CHAINS.get(":".join(choice.split(":")[:2]))


# COLLECTION #


def pytest_ignore_collect(collection_path: Path, config: pytest.Config):
    if HERE not in (collection_path, *collection_path.parents):
        return None
    spec = fork_spec(config)
    if spec is None:
        return True  # not a fork run: the whole directory is left out
    if collection_path.is_file() and collection_path.name.startswith("test_"):
        on_sepolia = collection_path.name.startswith(SEPOLIA_PREFIX)
        if on_sepolia != (spec.name == "sepolia"):
            return True
    return None


# UPSTREAM #


def pytest_configure(config: pytest.Config) -> None:
    spec = fork_spec(config)
    if spec is None or UPSTREAM in config.stash:
        return
    url, local = upstream_url(spec, Artifacts.from_ape_project)
    if local is not None:
        config.add_cleanup(local.stop)
    else:
        chain_id = int(RPC(url)("eth_chainId"), 16)
        if chain_id != spec.chain_id:
            raise pytest.UsageError(f"{spec.url_env} is a chain with id {chain_id}, not {spec.name} ({spec.chain_id})")
    config.stash[UPSTREAM] = (spec, url, local)
    point_fork_at(spec, url)
    keep_ape_caches_in_memory()


def point_fork_at(spec: ChainSpec, url: str) -> None:
    """Makes ape-foundry fork `url`: the upstream provider of `<network>-fork` is `node` (see
    ape-config.yaml), whose URI for the upstream network is set here, in Ape's loaded config."""
    from ape.utils.basemodel import ManagerAccessMixin

    node = ManagerAccessMixin.config_manager.get_config("node")
    networks = getattr(node.ethereum, spec.name)
    networks["uri"] = url


def keep_ape_caches_in_memory() -> None:
    """Ape 0.8 files the contract types and proxy info it sees on a fork in the upstream network's
    disk cache (~/.ape/ethereum/mainnet/...), where any later Ape session on the real network would
    read them back: the stand-ins, the feeds taken over and this suite's deployments would become
    "mainnet" ABIs. On a fork run they are kept in memory only, and nothing is read from that cache
    either (on the local upstream the real contracts' cached proxy info would be wrong)."""
    from ape.managers._contractscache import ApeDataCache

    if getattr(ApeDataCache, "_ballast_memory_only", False):
        return
    original = ApeDataCache.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._write_to_disk = False
        self._read_from_disk = False

    ApeDataCache.__init__ = __init__
    ApeDataCache._ballast_memory_only = True


def pytest_report_header(config: pytest.Config):
    if upstream := config.stash.get(UPSTREAM, None):
        spec, url, local = upstream
        where = f"local anvil seeded with stand-ins ({url})" if local else f"${spec.url_env}"
        return f"fork upstream: {spec.name} (chain id {spec.chain_id}): {where}"
    return None


# FIXTURES #


@pytest.fixture(scope="session")
def fork(request):
    """(spec, upstream url, local upstream or None) of this run."""
    return request.config.stash[UPSTREAM]


@pytest.fixture(scope="session")
def spec(fork) -> ChainSpec:
    return fork[0]


@pytest.fixture(scope="session", autouse=True)
def _on_the_fork(spec, chain, accounts):
    """The session runs on a fork of the right chain, and the test accounts are plain accounts there.
    On a real chain the well-known test keys are public: they may carry code (EIP-7702 delegations
    set by whoever holds the key) or a USDC blacklist flag, and either would change what the tests
    see. Both are cleared on the fork; on the local upstream there is nothing to clear."""
    from forktools import FIAT_TOKEN_ABI, contract, unblacklist

    assert chain.provider.network.name == f"{spec.name}-fork"
    assert chain.chain_id == spec.chain_id, f"fork has chain id {chain.chain_id}, expected {spec.chain_id}"
    usdc = contract(spec.usdc, FIAT_TOKEN_ABI)
    for account in list(accounts)[:12]:
        if len(chain.provider.get_code(account.address)) > 0:
            chain.provider.make_request("anvil_setCode", [account.address, "0x"])
        if usdc.isBlacklisted(account.address):
            unblacklist(spec.usdc, account)


# DEPLOYMENTS #


@pytest.fixture(scope="session")
def chain_config(spec):
    """config/<network>.yaml of the upstream network: the deployment config under test."""
    from forktools import load_network_config

    return load_network_config(spec.name)


@pytest.fixture(scope="module")
def env(project, chain, deployer, lp, chain_config):
    """Ballast deployed from config/<network>.yaml through scripts/_deploy.py (real USDC and feeds),
    its pool seeded with 1M dealt USDC. Overrides tests/conftest.py's `env`, so `solvent` checks it."""
    from forktools import FIAT_TOKEN_ABI, make_fork_env

    return make_fork_env(project, chain, deployer, lp, chain_config, FIAT_TOKEN_ABI)
