"""Deployment with the mainnet addresses of config/mainnet.yaml, through scripts/_deploy.py's deploy():
the protocol is bound to real USDC and the real Chainlink feeds, and reads them as they are."""

import json

from forktools import AGGREGATOR_ABI, FIAT_TOKEN_ABI, FeedControl, contract, head_timestamp
from helpers import BTC, ETH, WAD
from upstream import MAINNET_BTC_USD, MAINNET_ETH_USD, MAINNET_USDC


def test_config__is_the_mainnet_addresses(chain_config):
    assert chain_config.collateral == MAINNET_USDC
    assert [(m.name, m.feed, m.heartbeat) for m in chain_config.markets] == [
        ("ETH-USD", MAINNET_ETH_USD, 3600),
        ("BTC-USD", MAINNET_BTC_USD, 3600),
    ]
    assert not chain_config.uses_mocks


def test_deploy__binds_real_usdc_and_feeds(env, deployer, spec):
    r = env.record
    assert (r["network"], r["chain_id"], r["mocks"]) == ("mainnet-fork", 1, {})
    assert r["contracts"]["collateral"] == spec.usdc and r["collateral_decimals"] == 6
    assert env.engine.collateral_token() == spec.usdc
    assert env.pool.asset() == spec.usdc
    assert env.pool.engine() == env.engine.address
    usdc = contract(spec.usdc, FIAT_TOKEN_ABI)
    assert (usdc.decimals(), usdc.symbol()) == (6, "USDC")
    for market_id, (name, feed) in enumerate([("ETH-USD", MAINNET_ETH_USD), ("BTC-USD", MAINNET_BTC_USD)]):
        m = r["markets"][market_id]
        assert (m["name"], m["feed"], m["heartbeat"]) == (name, feed, 3600)
        oracle = env.oracles[market_id]
        assert env.engine.market(market_id).oracle == oracle.address == m["oracle"]
        assert oracle.feed() == feed and oracle.heartbeat() == 3600
        assert oracle.feed_decimals() == contract(feed, AGGREGATOR_ABI).decimals()


def test_deploy__oracles_read_the_feeds_as_they_are(env):
    now = head_timestamp()
    for market_id in (ETH, BTC):
        control = FeedControl.read(env.record["markets"][market_id]["feed"])
        feed = control.feed
        assert feed.version() >= 3 and control.description in ("ETH / USD", "BTC / USD")
        assert control.latest.answer > 0 and 0 < control.latest.updated_at <= now
        price, updated_at, ok = env.oracles[market_id].latest()
        assert (price, updated_at) == (control.wad(), control.latest.updated_at)
        assert ok is (now - control.latest.updated_at <= 3600)
        assert env.engine.price(market_id) == control.wad()
        # the round the feed reports can be read back by id
        again = feed.getRoundData(control.latest.round_id)
        assert (again[1], again[3]) == (control.latest.answer, control.latest.updated_at)
    # a plausible market: BTC above ETH, both positive WAD prices
    assert env.engine.price(BTC) > env.engine.price(ETH) > WAD


def test_deploy__record_round_trips_through_the_deployment_file(env, chain, tmp_path):
    from _deploy import write_deployment

    path = write_deployment(env.record, tmp_path)
    assert path.name == "mainnet-fork.json"
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(env.record))
    assert data["chain_id"] == 1 and data["contracts"]["engine"] == env.engine.address
    assert 0 < data["deploy_block"] <= chain.blocks.head.number
