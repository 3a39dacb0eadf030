"""Restarts, races, shards and stuck transactions, against a real anvil.

Most tests here turn automatic mining off and mine blocks themselves, so that transactions can be
left pending, several keepers can send into the same block, and a raised base fee can leave a
transaction stuck.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from conftest import ETH, Market, trader_specs

from keeper.localchain import selector_call
from keeper.shard import shard_of

GWEI = 10**9


def _nonces_by_account(*keepers) -> dict[str, set[tuple[str, int]]]:
    """Every (signer, nonce) each account was sent in, over the keepers' whole runs."""
    out: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for k in keepers:
        for nonce, _, accounts in k.sender.sent_log:
            for a in accounts:
                out[a].add((k.sender.address, nonce))
    return out


def test_restart__continues_from_the_checkpoint__replaces_what_was_pending__never_sends_twice(
    manual_mining: Market, make_keeper
) -> None:
    m = manual_mining
    start = m.block()
    first = make_keeper(state="shared.sqlite")
    first.start()
    m.set_price(ETH, 1800)
    at_1800 = m.liquidatable()
    sent = first.step()
    assert sent.sent >= 1 and {a for _, _, accs in first.sender.sent_log for a in accs} == at_1800
    checkpoint = first.state.checkpoint()
    assert checkpoint == m.block()
    first.close()  # stopped with its transaction still pending; state saved

    # while the keeper is down: its transaction cannot be mined (base fee above its max fee),
    # new traders open positions and the price falls again
    m.chain.hold_base_fee = 5 * GWEI
    newcomers = trader_specs(8, seed=7)
    m.open(newcomers)
    m.set_price(ETH, 1600)
    expected = m.liquidatable()
    assert at_1800 < expected and any(s.address in expected for s in newcomers)

    second = make_keeper(state="shared.sqlite")
    second.start()
    assert second.started_from_block == checkpoint + 1  # no gap, no rescan from the deploy block
    assert {s.address for s in newcomers} <= set(second.models)
    assert second.metrics.value("replacements") == 1  # the old transaction, still worth sending
    for _ in range(3):
        second.step()
        m.mine(1)
    second.step()

    done = Counter(a for a, _ in m.liquidations(start))
    assert set(done) == expected and set(done.values()) == {1}
    assert m.liquidatable() == set()
    # never two transactions (nonces) for the same account, over both runs
    assert all(len(n) == 1 for n in _nonces_by_account(first, second).values())
    assert not second.sender.pending() and second.metrics.value("liquidations_failed") == 0


def test_two_keepers_racing__each_account_liquidated_once__the_loser_counts_lost_races(
    manual_mining: Market, make_keeper
) -> None:
    m = manual_mining
    a = make_keeper(3, state="a.sqlite")
    b = make_keeper(5, state="b.sqlite")
    a.start()
    b.start()
    start = m.block()
    m.set_price(ETH, 1800)
    expected = m.liquidatable()

    ra, rb = a.step(), b.step()  # both see the same block and send the same accounts
    assert ra.sent and rb.sent
    m.mine(1)  # both transactions in one block: the first one takes everything
    a.step()
    b.step()

    done = Counter(acc for acc, _ in m.liquidations(start))
    assert set(done) == expected and set(done.values()) == {1}
    for k in (a, b):
        assert k.metrics.value("liquidations_failed") == 0
        assert all(o.status == "mined" for o in k.sender.outcomes)
    won = a.metrics.value("liquidations_mined") + b.metrics.value("liquidations_mined")
    lost = a.metrics.value("lost_races") + b.metrics.value("lost_races")
    assert won == len(expected) and lost == len(expected)
    loser = a if a.metrics.value("lost_races") else b
    assert all(not o.liquidated for o in loser.sender.outcomes)

    m.mine(1)  # nothing left for either of them
    assert a.step().sent == 0 and b.step().sent == 0


def test_keeper_behind_a_mined_race__counts_a_lost_race_in_simulation_and_sends_nothing(
    manual_mining: Market, make_keeper
) -> None:
    m = manual_mining
    fast = make_keeper(3, state="fast.sqlite")
    slow = make_keeper(5, state="slow.sqlite")
    fast.start()
    slow.start()
    m.set_price(ETH, 1800)
    expected = m.liquidatable()
    block = m.block()
    fast.step()
    m.mine(1)  # the fast keeper's liquidations are mined

    late = slow.step(block)  # the slow keeper still works on the older block

    assert late.sent == 0 and late.lost_in_simulation == len(expected)
    assert slow.metrics.value("lost_races") == len(expected)
    assert slow.metrics.value("liquidations_failed") == 0


def test_shards__split_the_accounts_and_never_overlap(fresh: Market, make_keeper, accounts) -> None:
    start = fresh.block()
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()
    one = make_keeper(3, state="one.sqlite", shard="1/2")
    two = make_keeper(5, state="two.sqlite", shard="2/2")
    one.start()
    two.start()
    assert set(one.models).isdisjoint(two.models)
    assert set(one.models) | set(two.models) == set(fresh.traders)

    r1, r2 = one.step(), two.step()
    one.step()
    two.step()

    assert set(r1.liquidatable).isdisjoint(r2.liquidatable)
    done = fresh.liquidations(start)
    assert sorted(a for a, _ in done) == sorted(expected)
    signer = {1: accounts[3].address, 2: accounts[5].address}
    assert all(liquidator == signer[shard_of(a, 2)] for a, liquidator in done)


def test_stuck_transaction__replaced_with_at_least_a_12_5_percent_bump(manual_mining: Market, make_keeper) -> None:
    m = manual_mining
    keeper = make_keeper(stuck_after_blocks=2)
    keeper.start()
    start = m.block()
    m.set_price(ETH, 1800)
    expected = m.liquidatable()
    assert keeper.step().sent == 1
    before = keeper.sender.pending()[0]

    m.chain.hold_base_fee = 5 * GWEI  # blocks now cost more than the transaction offers
    for _ in range(2):
        m.mine(1)
        keeper.step()
    after = keeper.sender.pending()[0]
    assert after.nonce == before.nonce and len(after.hashes) == 2
    assert after.fees.max_fee_per_gas * 8 >= before.fees.max_fee_per_gas * 9
    assert after.fees.max_priority_fee_per_gas * 8 >= before.fees.max_priority_fee_per_gas * 9
    assert after.fees.max_fee_per_gas >= 2 * 5 * GWEI  # and enough for the current base fee

    m.mine(1)
    keeper.step()
    assert sorted(a for a, _ in m.liquidations(start)) == sorted(expected)
    assert keeper.metrics.value("replacements") == 1 and not keeper.sender.pending()


def test_transaction_dropped_by_the_node__sent_again_next_block(manual_mining: Market, make_keeper) -> None:
    m = manual_mining
    keeper = make_keeper()
    keeper.start()
    start = m.block()
    m.set_price(ETH, 1800)
    expected = m.liquidatable()
    assert keeper.step().sent == 1
    sent = keeper.sender.pending()[0]
    m.engine.rpc.request("anvil_dropTransaction", [sent.tx_hash])
    assert m.chain.receipts([sent.tx_hash]) == [None] and m.chain.pending_count() == 0

    m.mine(1)
    keeper.step()  # sees the node no longer knows it: the same signed transaction again
    assert m.chain.pending_count() == 1
    m.mine(1)
    keeper.step()

    assert sorted(a for a, _ in m.liquidations(start)) == sorted(expected)
    assert not keeper.sender.pending() and keeper.metrics.value("replacements") == 0


def test_foreign_transaction_on_the_next_nonce__cancelled__the_liquidation_follows(
    manual_mining: Market, make_keeper, accounts
) -> None:
    m = manual_mining
    keeper = make_keeper(3)
    keeper.start()
    start = m.block()
    m.set_price(ETH, 1800)
    expected = m.liquidatable()
    signer = accounts[3].address
    m.chain.forget_nonces()
    stray = m.chain.send_many([{"from": signer, "to": signer, "data": "0x", "gas": 21_000}], fee=2 * GWEI)[0]

    assert keeper.step().sent == 0  # refused: the stray pays more for the same nonce
    assert keeper.step().sent == 1  # the stray is cancelled, the liquidation takes the next nonce
    for _ in range(2):
        m.mine(1)
        keeper.step()

    assert sorted(a for a, _ in m.liquidations(start)) == sorted(expected)
    assert m.chain.receipts([stray]) == [None]
    assert keeper.metrics.value("cancellations") == 1 and keeper.metrics.value("liquidations_failed") == 0
    assert not keeper.sender.pending()


def test_restart__cancels_a_pending_liquidation_nobody_needs_any_more(
    manual_mining: Market, make_keeper, accounts
) -> None:
    m = manual_mining
    start = m.block()
    first = make_keeper(3, state="first.sqlite")
    first.start()
    m.set_price(ETH, 1800)
    expected = m.liquidatable()
    assert first.step().sent == 1
    first.close()

    # while it is down: its transaction is priced out of the pool and another keeper
    # (paying the raised base fee) liquidates everything
    m.chain.hold_base_fee = 5 * GWEI
    other = make_keeper(5, state="other.sqlite", priority_fee_gwei=6)
    other.start()
    other.step()
    m.mine(1)
    other.step()

    again = make_keeper(3, state="first.sqlite")
    again.start()
    assert again.metrics.value("cancellations") == 1 and again.metrics.value("replacements") == 0
    for _ in range(2):
        m.mine(1)
        again.step()

    done = m.liquidations(start)
    assert sorted(a for a, _ in done) == sorted(expected)
    assert {liq for _, liq in done} == {accounts[5].address}
    signer = accounts[3].address
    assert not again.sender.pending() and not again.state.locked_accounts()
    assert _count(m, signer, "pending") == _count(m, signer, "latest") == 1  # the liquidation's nonce, cancelled


def test_start_up__cancels_a_pool_transaction_the_state_does_not_know(
    manual_mining: Market, make_keeper, accounts
) -> None:
    m = manual_mining
    signer = accounts[3].address
    stray = m.chain.send_many([{"from": signer, "to": signer, "data": "0x", "gas": 21_000}], fee=GWEI)[0]
    keeper = make_keeper(3)

    keeper.start()

    assert keeper.metrics.value("cancellations") == 1
    m.mine(1)
    keeper.step()
    assert m.chain.receipts([stray]) == [None]  # replaced by the keeper's cancel
    assert not keeper.sender.pending()
    assert _count(m, signer, "pending") == _count(m, signer, "latest") == 1


def _count(m: Market, address: str, tag: str) -> int:
    return int(m.engine.rpc.request("eth_getTransactionCount", [address, tag]), 16)


def test_selector_call__encodes_like_the_engine_abi() -> None:
    from keeper.abi import fn

    assert selector_call("liquidate_many(address[])", ["address[]"], [["0x" + "11" * 20]]) == fn(
        "liquidate_many"
    ).encode(["0x" + "11" * 20])
