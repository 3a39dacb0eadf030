"""The oracle adapter's staleness rule against the feed's heartbeat (3600 s in config/mainnet.yaml), after
a time jump with no new round; a new answer on the feed (its decimals kept) makes it valid again."""

from decimal import Decimal

import ape

from forktools import FeedControl, head_timestamp, mine_at
from helpers import BTC, ETH


def test_oracle__valid_up_to_the_heartbeat_then_stale(env, trader):
    oracle = env.oracles[ETH]
    heartbeat = oracle.heartbeat()
    assert heartbeat == 3600
    feed = FeedControl.read(env.record["markets"][ETH]["feed"])
    updated = feed.latest.updated_at
    assert head_timestamp() < updated + heartbeat, "the feed must be live at the fork block"

    mine_at(updated + heartbeat)  # exactly one heartbeat old: still valid
    assert oracle.price() == feed.wad()
    assert env.engine.price(ETH) == feed.wad()
    assert oracle.latest() == (feed.wad(), updated, True)

    mine_at(updated + heartbeat + 1)  # one second more, no new round
    assert FeedControl.read(feed.address).latest == feed.latest
    with ape.reverts("oracle: stale"):
        oracle.price()
    with ape.reverts("oracle: stale"):
        env.engine.price(ETH)
    assert oracle.latest() == (feed.wad(), updated, False)
    env.fund(trader, 10_000)
    with ape.reverts("oracle: stale"):
        env.trade(trader, ETH, 1)


def test_oracle__new_answer_after_stale__valid_with_the_feed_decimals(env, deployer, trader, solvent):
    oracle = env.oracles[ETH]
    feed = FeedControl.read(env.record["markets"][ETH]["feed"])
    mine_at(max(head_timestamp(), feed.latest.updated_at) + 2 * oracle.heartbeat())
    with ape.reverts("oracle: stale"):
        oracle.price()

    decimals = feed.decimals
    feed.take_over(deployer)
    assert feed.feed.decimals() == oracle.feed_decimals() == decimals  # the real feed's decimals, kept
    last_round = feed.latest.round_id
    new_answer = feed.answer_of(Decimal(feed.latest.answer) / 10**feed.decimals * Decimal("0.97"))
    r = feed.set_answer(new_answer, deployer)
    assert r.updated_at == head_timestamp() and r.round_id == last_round + 1
    assert oracle.price() == feed.wad(new_answer) == new_answer * 10 ** (18 - feed.decimals)
    assert env.engine.price(ETH) == feed.wad(new_answer)
    env.fund(trader, 10_000)
    env.trade(trader, ETH, 1)  # trading resumes at the new price
    # the other market's feed got no new round: still stale
    with ape.reverts("oracle: stale"):
        env.engine.price(BTC)


def test_oracle__take_over_continues_the_feed(env, deployer):
    before = FeedControl.read(env.record["markets"][BTC]["feed"])
    before_price = env.engine.price(BTC)
    before.take_over(deployer)
    after = FeedControl.read(before.address)
    assert (after.decimals, after.description, after.latest) == (before.decimals, before.description, before.latest)
    assert env.engine.price(BTC) == before_price
    r = before.set_answer(before.latest.answer + 1, deployer)
    assert r.round_id == before.latest.round_id and r.round_id == after.latest.round_id + 1
    assert before.feed.getRoundData(r.round_id)[1] == after.latest.answer + 1
    assert before.feed.getRoundData(after.latest.round_id)[1] == after.latest.answer
    with ape.reverts("aggregator: no data"):  # rounds before the take-over are not kept
        before.feed.getRoundData(after.latest.round_id - 1)
