"""The test-chain deploy: `ape run deploy --network ... --account ALIAS` with config/sepolia.yaml, run
as a user runs it: a separate process, an Ape keyfile account in its own Ape data folder, and the
passphrase and a "y" at each signing prompt typed in. Collected only with
`--network ethereum:sepolia-fork:foundry`, whose upstream has chain id 11155111 and the real Sepolia
addresses of USDC and the Chainlink feeds (stand-ins on the local upstream).

- through `ethereum:sepolia-fork:foundry`: the deploy process uses this session's fork node
  (APE_FOUNDRY_HOST), so the deployment is inspected and used here with Ape;
- through `ethereum:sepolia:node`, the exact command for the real chain, with the RPC URL given the
  way the README says (APE_NODE_SEPOLIA): the node is an anvil fork of the same upstream that mines
  a block every second, so Ape waits for Sepolia's 2 confirmations as it would for real.
"""

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from eth_account import Account

import model
from forktools import FIAT_TOKEN_ABI, FeedControl, env_from_record
from helpers import BTC, ETH, WAD, assert_solvent
from upstream import RPC, SEPOLIA_BTC_USD, SEPOLIA_ETH_USD, SEPOLIA_USDC, free_port

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "ballast-sepolia-deployer"
PASSPHRASE = "fork-suite-only"
N_DEPLOY_TXS = 9  # pool, config, engine, config.set_engine, pool.set_engine, 2 oracles, 2 add_market
MARKETS = [("ETH-USD", SEPOLIA_ETH_USD, 3600), ("BTC-USD", SEPOLIA_BTC_USD, 3600)]


def run_deploy(tmp_path_factory, network: str, env_extra: dict, fund, with_account: bool = True):
    """`ape run deploy --network <network> [--account ALIAS]` in its own process, with a fresh keyfile
    account; `fund(address)` gives it ETH. Returns (deployer, completed process, output directory)."""
    home = tmp_path_factory.mktemp("ape-data")
    (home / "accounts").mkdir()
    key = Account.create()
    (home / "accounts" / f"{ALIAS}.json").write_text(json.dumps(Account.encrypt(key.key, PASSPHRASE)))
    fund(key.address)
    out_dir = tmp_path_factory.mktemp("deployments")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APE_", "BALLAST_"))}
    env.update(APE_DATA_FOLDER=str(home), **env_extra)
    cmd = [str(Path(sys.executable).with_name("ape")), "run", "deploy", "--network", network, "--out", str(out_dir)]
    if with_account:
        cmd += ["--account", ALIAS]
    # what a user types: sign the first transaction, the passphrase, keep the account unlocked for
    # this run, then sign each further transaction
    answers = f"y\n{PASSPHRASE}\ny\n" + "y\n" * 40
    done = subprocess.run(cmd, cwd=ROOT, env=env, input=answers, capture_output=True, text=True, timeout=240)
    return key.address, done, out_dir


def _ok(done) -> None:
    assert done.returncode == 0, f"ape run deploy failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


def check_record(record, network: str, deployer: str, stdout: str) -> None:
    assert (record["network"], record["chain_id"]) == (network, 11155111)
    assert record["deployer"] == deployer and record["mocks"] == {}
    assert record["contracts"]["collateral"] == SEPOLIA_USDC and record["collateral_decimals"] == 6
    assert [(m["name"], m["feed"], m["heartbeat"]) for m in record["markets"]] == MARKETS
    assert f"engine {record['contracts']['engine']}" in stdout
    assert "wrote " in stdout and f"{network}.json" in stdout


# THROUGH ethereum:sepolia-fork:foundry #


@pytest.fixture(scope="module")
def deployed(fork, chain, tmp_path_factory):
    """(deployer, record, stdout) of a deploy through this session's sepolia-fork node."""
    spec, upstream, _ = fork
    deployer, done, out_dir = run_deploy(
        tmp_path_factory,
        f"{spec.fork_network}:foundry",
        {"APE_FOUNDRY_HOST": chain.provider.uri, "APE_NODE_SEPOLIA": json.dumps({"uri": upstream})},
        lambda address: chain.provider.set_balance(address, 10 * 10**18),
    )
    _ok(done)
    return deployer, json.loads((out_dir / "sepolia-fork.json").read_text()), done.stdout


@pytest.fixture
def sepolia_env(deployed, project, deployer):
    """The deployment as a ForkEnv (the deployer fixture only sends the tests' own feed transactions);
    solvency is checked after the test."""
    e = env_from_record(project, deployed[1], deployer, FIAT_TOKEN_ABI)
    yield e
    assert_solvent(e)


def test_config__is_the_sepolia_addresses(chain_config):
    assert chain_config.collateral == SEPOLIA_USDC
    assert [(m.name, m.feed, m.heartbeat) for m in chain_config.markets] == MARKETS
    assert not chain_config.uses_mocks


def test_ape_run_deploy_on_sepolia_fork__writes_the_deployment(deployed, chain):
    deployer, record, stdout = deployed
    check_record(record, "sepolia-fork", deployer, stdout)
    # on this session's fork node, sent by the alias's account
    assert len(chain.provider.get_code(record["contracts"]["engine"])) > 0
    assert chain.provider.get_nonce(deployer) == N_DEPLOY_TXS


def test_deployed_on_sepolia__bound_to_usdc_and_the_feeds(deployed, project):
    _, record, _ = deployed
    engine = project.MarginEngine.at(record["contracts"]["engine"])
    pool = project.RiskPool.at(record["contracts"]["pool"])
    assert engine.collateral_token() == SEPOLIA_USDC == pool.asset()
    assert pool.engine() == engine.address
    for market_id in (ETH, BTC):
        m = record["markets"][market_id]
        oracle = project.ChainlinkOracle.at(m["oracle"])
        assert engine.market(market_id).oracle == oracle.address
        assert oracle.feed() == m["feed"] and oracle.heartbeat() == 3600
        feed = FeedControl.read(m["feed"])
        assert oracle.feed_decimals() == feed.decimals
        price, updated_at, _ = oracle.latest()
        assert (price, updated_at) == (feed.wad(), feed.latest.updated_at)


def test_deployed_on_sepolia__takes_usdc_and_trades(lp, trader, sepolia_env):
    e = sepolia_env
    e.seed_pool(lp, 100_000)
    e.fund(trader, 5_000)  # Sepolia USDC (a FiatToken proxy), dealt
    assert e.engine.collateral(trader.address) == 5_000 * WAD

    p = e.engine.price(ETH)
    assert p == e.controls[ETH].wad()  # the Sepolia feed's answer
    expected = model.fill_price(p, 0, WAD // 2, e.engine.market(ETH).params.skew_scale)
    tx = e.trade(trader, ETH, Decimal("0.5"))
    [log] = tx.decode_logs(e.engine.Trade)
    assert (log.new_size, log.fill_price) == (WAD // 2, expected)


# THROUGH ethereum:sepolia:node #


@pytest.fixture(scope="module")
def sepolia_node(fork):
    """An anvil fork of the session's Sepolia upstream that mines a block every second, standing in
    for a Sepolia RPC endpoint."""
    _, upstream, _ = fork
    port = free_port()
    anvil = subprocess.Popen(
        ["anvil", "--port", str(port), "--fork-url", upstream, "--block-time", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    rpc = RPC(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert int(rpc("eth_chainId"), 16) == 11155111
                break
            except Exception:
                if time.monotonic() > deadline or anvil.poll() is not None:
                    raise
                time.sleep(0.1)
        yield rpc
    finally:
        anvil.terminate()
        anvil.wait(timeout=10)


def _node_env(rpc) -> dict:
    return {"APE_NODE_SEPOLIA": json.dumps({"uri": rpc.url})}


def test_ape_run_deploy_on_sepolia_node__needs_an_account(sepolia_node, tmp_path_factory):
    _, done, _ = run_deploy(tmp_path_factory, "ethereum:sepolia:node", _node_env(sepolia_node), lambda a: None, with_account=False)
    assert done.returncode != 0
    assert "--account ALIAS is required on sepolia" in done.stdout + done.stderr


def test_ape_run_deploy_on_sepolia_node__deploys_with_the_alias(sepolia_node, tmp_path_factory):
    rpc = sepolia_node

    def fund(address):
        rpc("anvil_setBalance", address, hex(10 * 10**18))

    deployer, done, out_dir = run_deploy(tmp_path_factory, "ethereum:sepolia:node", _node_env(rpc), fund)
    _ok(done)
    record = json.loads((out_dir / "sepolia.json").read_text())
    check_record(record, "sepolia", deployer, done.stdout)
    assert int(rpc("eth_getTransactionCount", deployer, "latest"), 16) == N_DEPLOY_TXS

    c = record["contracts"]
    (token,) = rpc.call(c["engine"], "collateral_token()", [], [], ["address"])
    (asset,) = rpc.call(c["pool"], "asset()", [], [], ["address"])
    (engine,) = rpc.call(c["pool"], "engine()", [], [], ["address"])
    assert token.lower() == asset.lower() == SEPOLIA_USDC.lower() and engine.lower() == c["engine"].lower()
    for m in record["markets"]:
        (feed,) = rpc.call(m["oracle"], "feed()", [], [], ["address"])
        (heartbeat,) = rpc.call(m["oracle"], "heartbeat()", [], [], ["uint256"])
        (price, updated_at, _) = rpc.call(m["oracle"], "latest()", [], [], ["uint256", "uint256", "bool"])
        (decimals,) = rpc.call(feed, "decimals()", [], [], ["uint8"])
        (_, answer, _, feed_updated_at, _) = rpc.call(feed, "latestRoundData()", [], [], ["uint80", "int256", "uint256", "uint256", "uint80"])
        assert (feed.lower(), heartbeat) == (m["feed"].lower(), 3600)
        assert (price, updated_at) == (answer * 10 ** (18 - decimals), feed_updated_at)
