"""Fault injection: the keeper behind :mod:`faultproxy`, a JSON-RPC proxy that fails on demand.

Each scenario runs a keeper against the shared anvil through the proxy, injects one kind of fault
around a price drop, and checks the same four things:

- the keeper keeps running (its loop is alive until the test stops it, and stops with code 0);
- it never loses track of an account: every account liquidatable at the price update's block is
  liquidated in the end, exactly once, and no other;
- it never has two transactions in flight for one account (from the proxy's record of every raw
  transaction, decoded independently of the keeper: :func:`faultproxy.overlapping_flights`);
- its Prometheus ``/metrics`` show what happened (errors by kind, lost races, skips, reorgs).

Expected liquidations are read at the price update's block, never at the head after a running
keeper may have acted. A first test checks the proxy's own decoding and that the overlap check
does flag an offence.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ETH, Market, keeper_cli, trader_specs, wait_for
from eth_account import Account
from faultproxy import FaultProxy, SentTx, overlapping_flights
from prometheus_client.parser import text_string_to_metric_families

from keeper.localchain import free_port, selector_call
from keeper.rpc import Rpc, RpcError

GWEI = 10**9


# -- harness -------------------------------------------------------------------------------------


@pytest.fixture
def proxy(fresh: Market) -> Iterator[FaultProxy]:
    with FaultProxy(fresh.url) as p:
        yield p
    assert not p.errors, f"the fault proxy itself failed: {p.errors}"


class Watched:
    """A keeper behind the proxy with ``/metrics`` on its own port. ``with`` runs ``keeper.run()``
    in a thread, as the CLI does; :meth:`finish` checks the loop was still running and that it
    stops cleanly when asked; :meth:`check` asserts what every test asserts."""

    def __init__(self, m: Market, proxy: FaultProxy, keeper, port: int, *, wait: bool) -> None:
        self.m = m
        self.proxy = proxy
        self.keeper = keeper
        self.port = port
        self.wait = wait
        self.since = m.block()
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="keeper-under-test", daemon=True)

    def _run(self) -> None:
        try:
            self.code = self.keeper.run()
        except BaseException as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def __enter__(self) -> Watched:
        self.thread.start()
        if self.wait:  # until its first pass is done
            wait_for(lambda: self.keeper.history or not self.thread.is_alive(), timeout=30)
            assert self.thread.is_alive(), f"the keeper did not start: {self.error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.keeper.request_stop()
            self.thread.join(timeout=20)

    def finish(self) -> dict:
        """Wait until nothing is liquidatable or pending and the keeper has seen the head; read
        its ``/metrics``; stop it. Returns the samples."""
        wait_for(lambda: settled(self.m, self.keeper), timeout=30)
        samples = scrape(self.port)
        assert self.thread.is_alive(), f"the keeper stopped on its own: {self.error!r}"
        self.keeper.request_stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "the keeper did not stop when asked"
        assert self.error is None and self.code == 0, f"exit {self.code}, error {self.error!r}"
        return samples

    def check(self, expected: set[str]) -> list[tuple[str, str]]:
        """Each expected account liquidated once, no other, never two in flight."""
        assert expected
        done = liquidated_once(self.m, self.since, expected)
        no_overlap(self.proxy, self.m)
        return done


@pytest.fixture
def watch(fresh: Market, proxy: FaultProxy, make_keeper):
    """``watch(wait=True, **flags)``: a :class:`Watched` keeper behind the proxy (RPC timeout 2 s)."""

    def make(*, wait: bool = True, **flags) -> Watched:
        flags.setdefault("rpc_timeout", 2)
        port = free_port()
        keeper = make_keeper(rpc_url=proxy.url, metrics_port=port, **flags)
        return Watched(fresh, proxy, keeper, port, wait=wait)

    return make


@pytest.fixture
def stepped(manual_mining: Market, proxy: FaultProxy, make_keeper):
    """A started keeper behind the proxy that the test drives pass by pass (``step``), on a
    chain that only mines when the test says so."""
    keeper = make_keeper(rpc_url=proxy.url)
    keeper.start()
    return keeper


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the keeper's ``/metrics``: ``(name, labels) -> value``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples ``ballast_keeper_<name>`` whose labels include ``labels``."""
    full = f"ballast_keeper_{name}"
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == full and want <= lab)


def liquidated_once(m: Market, start: int, expected: set[str]) -> list[tuple[str, str]]:
    """Check every expected account was liquidated exactly once since ``start``, and no other;
    returns ``(account, liquidator)`` pairs."""
    done = m.liquidations(start)
    counts = Counter(a for a, _ in done)
    assert set(counts) == expected, f"missing {expected - set(counts)}, unexpected {set(counts) - expected}"
    assert set(counts.values()) == {1}, f"liquidated twice: {[a for a, n in counts.items() if n > 1]}"
    return done


def price_drop(m: Market, usd: float = 1800) -> set[str]:
    """Move the ETH price; the accounts liquidatable at the block of the update."""
    return m.liquidatable(block=m.set_price(ETH, usd))


def send_now(m: Market, sender: str, to: str, data: str = "0x", gas: int = 21_000) -> None:
    """A transaction from ``sender`` sent straight to the node (not through the proxy), mined."""
    m.chain.forget_nonces()
    hashes = m.chain.send_many([{"from": sender, "to": to, "data": data, "gas": gas}])
    m.chain.mine_until_done(hashes, manual=False)


def no_overlap(proxy: FaultProxy, m: Market) -> None:
    offences = overlapping_flights(proxy.sends, m.engine.rpc)
    assert not offences, "\n".join(offences)


def settled(m: Market, keeper) -> bool:
    """Nothing liquidatable at the head, nothing pending, and the keeper has seen the head."""
    return (
        not m.liquidatable()
        and keeper.metrics.value("pending_transactions") == 0
        and keeper.processed == m.block()
    )


@contextmanager
def blocks_every(m: Market, seconds: float) -> Iterator[None]:
    """A chain that moves on by itself: a block every ``seconds`` (automatic mining stays on)."""
    stop = threading.Event()
    rpc = Rpc([m.url], timeout=30.0, retries=1)

    def tick() -> None:
        while not stop.wait(seconds):
            rpc.request("anvil_mine", ["0x1"])

    thread = threading.Thread(target=tick, name="block-ticker", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
        rpc.close()

def test_fault_proxy__decodes_each_raw_transaction__and_the_overlap_check_can_fail(
    fresh: Market, proxy: FaultProxy, dev_keys: list[str], accounts
) -> None:
    a, b = fresh.traders[:2]
    tx = {
        "type": 2,
        "chainId": 31337,
        "nonce": 7,
        "to": fresh.engine.address,
        "value": 0,
        "data": selector_call("liquidate_many(address[])", ["address[]"], [[a, b]]),
        "gas": 500_000,
        "maxFeePerGas": 3 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    raw = "0x" + bytes(Account.from_key(dev_keys[3]).sign_transaction(tx).raw_transaction).hex()
    proxy.fail_send("nonce_too_low", count=1)
    [answer] = Rpc([proxy.url], retries=0).batch([("eth_sendRawTransaction", [raw])])
    assert isinstance(answer, RpcError) and answer.message == "nonce too low"
    [sent] = proxy.sends
    assert (sent.sender, sent.nonce, sent.to, sent.accounts) == (accounts[3].address, 7, fresh.engine.address, (a, b))
    assert (sent.max_fee, sent.tip, sent.gas, sent.accepted) == (3 * GWEI, GWEI, 500_000, False)

    # the same account at another nonce while nonce 7 is not mined: an offence; a replacement
    # (same nonce) or a send the node refused: none
    first = replace(sent, seq=1, forwarded=True, error=None)
    other = replace(sent, seq=2, nonce=8, forwarded=True, error=None, accounts=(b,))
    offences = overlapping_flights([first, other], fresh.engine.rpc)
    assert len(offences) == 1 and offences[0].startswith(f"{b}: sent at nonce 8")
    assert overlapping_flights([first, replace(other, nonce=7)], fresh.engine.rpc) == []
    assert overlapping_flights([replace(first, forwarded=False), other], fresh.engine.rpc) == []



# -- the RPC itself failing ----------------------------------------------------------------------


def test_rpc_down_then_back__at_start_up_and_while_running__liquidates_once_it_is_back(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    w = watch(wait=False)
    errors = lambda: w.keeper.metrics.value("errors", kind="rpc")  # noqa: E731
    proxy.down()  # between the start-up checks and the first pass
    with w:
        wait_for(lambda: errors() >= 1, timeout=15)
        proxy.up()
        wait_for(lambda: len(w.keeper.history) >= 1, timeout=15)  # the first pass ran
        proxy.down()
        expected = price_drop(fresh)
        wait_for(lambda: errors() >= 2, timeout=15)
        proxy.http_error(503, count=1)  # back, but the first answer is a 503
        proxy.up()
        samples = w.finish()

    w.check(expected)
    assert proxy.injected["http_503"] == 1
    refused = metric(samples, "rpc_errors_total", kind="connection_refused")
    # a call and its retry per outage (a request caught by the shutdown is reset, not refused)
    assert refused >= 2 and refused + metric(samples, "rpc_errors_total", kind="connection") >= 4
    assert metric(samples, "rpc_errors_total", kind="http_5xx") == 1
    assert metric(samples, "errors_total", kind="rpc") >= 2  # the passes that could not run
    assert metric(samples, "liquidations_mined_total") == len(expected)
    assert metric(samples, "liquidations_failed_total") == 0


def test_timeouts__slow_reads_retried__a_send_whose_answer_is_lost_is_not_sent_twice(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    w = watch(rpc_timeout=0.5)
    with w:
        proxy.delay(1.5, count=2)  # a call and its retry both answered too late
        wait_for(lambda: w.keeper.metrics.value("errors", kind="rpc") >= 1, timeout=15)
        # the node takes the transaction, but its answer comes after the keeper gave up
        proxy.delay(1.5, methods="eth_sendRawTransaction", count=1)
        expected = price_drop(fresh)
        wait_for(lambda: proxy.injected["delay"] == 3, timeout=20)
        samples = w.finish()

    done = w.check(expected)
    assert {liq for _, liq in done} == {w.keeper.signer.address}
    assert proxy.sent_accounts(accepted_only=False) == Counter({a: 1 for a in expected})  # one nonce each
    assert metric(samples, "rpc_errors_total", kind="timeout") >= 3
    assert metric(samples, "liquidations_mined_total") == len(expected)  # its own, though unheard
    assert metric(samples, "liquidations_failed_total") == 0


def test_corrupt_answers__detected_as_malformed__never_acted_on__the_keeper_recovers(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    w = watch(rpc_retries=4)
    kinds = ("bad_json", "truncated_body", "wrong_ids", "truncated_results")
    with w:
        for kind in kinds:  # each spoils one answer holding an eth_call: the pass's reads
            proxy.corrupt(kind, methods="eth_call", count=1)
        for kind in ("wrong_ids", "truncated_body"):  # and the answers to a single call
            proxy.corrupt(kind, methods="eth_blockNumber", count=1)
        expected = price_drop(fresh)
        samples = w.finish()

    w.check(expected)
    assert sum(proxy.injected[k] for k in kinds) == 6
    assert metric(samples, "rpc_errors_total", kind="malformed") == 6  # each one seen, none used
    assert metric(samples, "errors_total") == 0  # retried within the pass: no pass failed
    assert metric(samples, "liquidations_mined_total") == len(expected)
    assert metric(samples, "liquidations_failed_total") == 0


def test_provider_refusing_large_log_ranges__shrinks_them__finds_every_account(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    proxy.limit_log_range(5, message="query returned more than 10000 results")
    w = watch(log_chunk_blocks=1000)
    with w:
        assert set(w.keeper.state.accounts()) == set(fresh.traders)  # the start-up scan
        at_start = proxy.injected["log_range_refused"]
        assert at_start >= 1
        # the keeper loses the node while traders open positions over many blocks, and the
        # provider comes back with a tighter limit than the one the keeper learned
        proxy.down()
        proxy.limit_log_range(2, message="block range too large", code=-32602)
        newcomers = {s.address for s in trader_specs(6, seed=11)}
        fresh.open(trader_specs(6, seed=11))
        expected = price_drop(fresh)
        assert fresh.block() - w.keeper.processed > 2  # the catch-up range is above the new limit
        proxy.up()
        samples = w.finish()

    assert newcomers & expected
    w.check(expected)
    assert proxy.injected["log_range_refused"] > at_start  # refused again when catching up
    assert newcomers <= set(w.keeper.state.accounts())
    assert metric(samples, "log_ranges_refused_total") == proxy.injected["log_range_refused"]
    assert metric(samples, "model_misses_total") == 0  # found by its events, not by the sweep


# -- the chain ----------------------------------------------------------------------------------


def test_reorg_dropping_a_mined_liquidation__detected__liquidated_again(
    manual_mining: Market, proxy: FaultProxy, stepped
) -> None:
    m, keeper = manual_mining, stepped
    start = m.block()
    fork = m.chain.snapshot()
    expected = price_drop(m, 1500)  # deep enough to close some accounts entirely
    assert keeper.step().sent >= 1
    m.mine(1)
    keeper.step()
    liquidated_once(m, start, expected)
    mined_before = keeper.sender.outcomes[-1].block

    # the blocks of the price update and of the liquidation are replaced by a longer branch that
    # holds the same price update but not the liquidation
    assert m.chain.revert(fork)
    m.chain.forget_nonces()
    m.set_price(ETH, 1500)
    m.mine(2)
    assert m.block() >= mined_before and m.liquidatable() == expected  # the head is not behind
    keeper.step()
    m.mine(1)
    keeper.step()

    liquidated_once(m, start, expected)
    no_overlap(proxy, m)
    assert keeper.metrics.value("reorgs_detected") == 1
    assert keeper.metrics.value("liquidations_mined") == 2 * len(expected)  # each receipt seen
    assert not keeper.sender.pending()


# -- sending ------------------------------------------------------------------------------------


def test_nonce_too_low_after_a_send_from_the_same_key_elsewhere__resynced__sent_on_the_next_nonce(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    w = watch()
    signer = w.keeper.signer.address
    proxy.before_send(lambda tx: send_now(fresh, signer, signer), count=1)  # another process, same key
    with w:
        expected = price_drop(fresh)
        samples = w.finish()

    done = w.check(expected)
    assert {liq for _, liq in done} == {signer}
    first, *later = proxy.sends
    assert "nonce too low" in (first.error or "") and later and later[0].nonce == first.nonce + 1
    assert metric(samples, "send_errors_total", kind="nonce_too_low") == 1
    assert metric(samples, "liquidations_mined_total") == len(expected)
    assert metric(samples, "liquidations_failed_total") == 0


def test_replacement_underpriced__the_nonce_holder_is_cancelled__liquidated_on_the_next_nonce(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    w = watch()
    proxy.fail_send("underpriced", count=1)
    with w, blocks_every(fresh, 0.3):
        expected = price_drop(fresh)
        samples = w.finish()

    done = w.check(expected)
    assert {liq for _, liq in done} == {w.keeper.signer.address}
    refused = proxy.sends[0]
    assert refused.error == "replacement transaction underpriced" and not refused.accepted
    cancels = [t for t in proxy.sends if t.accepted and not t.accounts]
    assert [t.nonce for t in cancels] == [refused.nonce]
    assert metric(samples, "send_errors_total", kind="underpriced") == 1
    assert metric(samples, "cancellations_total") == 1
    assert metric(samples, "liquidations_mined_total") == len(expected)
    assert metric(samples, "liquidations_failed_total") == 0


def test_insufficient_funds__clear_error__keeps_running__liquidates_once_funded(
    fresh: Market, proxy: FaultProxy, watch, caplog: pytest.LogCaptureFixture
) -> None:
    w = watch()
    signer = w.keeper.signer.address
    fresh.chain.set_balances([signer], 10**12)  # not enough for one liquidation's gas
    try:
        with caplog.at_level(logging.ERROR, logger="keeper"), w, blocks_every(fresh, 0.3):
            expected = price_drop(fresh)
            wait_for(lambda: w.keeper.metrics.value("send_errors", kind="insufficient_funds") >= 2, timeout=20)
            broke = scrape(w.port)
            assert fresh.liquidations(w.since) == [] and fresh.liquidatable() == expected
            fresh.chain.set_balances([signer], 10 * 10**18)
            samples = w.finish()
    finally:
        fresh.chain.set_balances([signer], 10_000 * 10**18)

    done = w.check(expected)
    assert {liq for _, liq in done} == {signer}
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("cannot pay for gas" in msg and "fund it" in msg for msg in messages)
    assert metric(broke, "signer_balance_eth") < 0.001 and metric(samples, "signer_balance_eth") > 1
    assert metric(samples, "send_errors_total", kind="insufficient_funds") >= 2
    assert metric(samples, "liquidations_mined_total") == len(expected)


def test_gas_spike__above_the_fee_cap_then_unprofitable__skipped_and_counted__liquidated_when_gas_falls(
    fresh: Market, proxy: FaultProxy, watch
) -> None:
    spike, high = 3_000 * GWEI, 1_000 * GWEI
    w = watch(max_fee_gwei=2_000)

    def next_block_at(base_fee: int) -> None:
        fresh.chain.rpc.batch([("anvil_setNextBlockBaseFeePerGas", [hex(base_fee)]), ("anvil_mine", ["0x1"])])

    try:
        with w:
            fresh.chain.rpc.request("anvil_setNextBlockBaseFeePerGas", [hex(spike)])
            fresh.chain.hold_base_fee = spike
            expected = price_drop(fresh)  # in a block whose base fee is above the keeper's cap
            wait_for(lambda: w.keeper.metrics.value("fee_cap_skips") >= 1, timeout=20)
            fresh.chain.hold_base_fee = None
            next_block_at(high)  # under the cap, but the gas costs more than the rewards
            wait_for(lambda: w.keeper.metrics.value("unprofitable_skips") >= 1, timeout=20)
            assert proxy.sends == [] and fresh.liquidatable() == expected
            next_block_at(GWEI)
            samples = w.finish()
    finally:
        fresh.chain.hold_base_fee = None
        fresh.chain.rpc.request("anvil_setNextBlockBaseFeePerGas", ["0x0"])

    w.check(expected)
    assert all(t.max_fee < high for t in proxy.sends)
    assert metric(samples, "fee_cap_skips_total") >= 1
    assert metric(samples, "unprofitable_skips_total") >= 1
    assert metric(samples, "liquidations_mined_total") == len(expected)
    assert metric(samples, "liquidations_failed_total") == 0


def test_another_keeper_wins_part_of_the_race__lost_races_counted__not_errors(
    fresh: Market, proxy: FaultProxy, watch, accounts
) -> None:
    w = watch()
    rival = accounts[5].address
    taken: list[str] = []

    def rival_first(tx: SentTx) -> None:  # mined just before the keeper's transaction
        taken.extend(tx.accounts[: len(tx.accounts) // 2])
        call = selector_call("liquidate_many(address[])", ["address[]"], [taken])
        send_now(fresh, rival, fresh.engine.address, call, gas=5_000_000)

    proxy.before_send(rival_first, count=1)
    with w:
        expected = price_drop(fresh)
        samples = w.finish()

    done = w.check(expected)
    assert taken and {a for a, liq in done if liq == rival} == set(taken)
    assert {a for a, liq in done if liq == w.keeper.signer.address} == expected - set(taken)
    outcomes = [(o.block, len(o.liquidated), len(o.lost)) for o in w.keeper.sender.outcomes]
    passes = [(h.block, len(h.liquidatable), h.lost_in_simulation) for h in w.keeper.history]
    assert metric(samples, "lost_races_total") == len(taken), (outcomes, passes)
    assert metric(samples, "liquidations_mined_total") == len(expected) - len(taken)
    assert metric(samples, "liquidations_failed_total") == 0
    assert metric(samples, "errors_total") == 0


def test_own_liquidation_mined_after_the_block_a_pass_reads__not_counted_as_a_lost_race(
    manual_mining: Market, proxy: FaultProxy, stepped
) -> None:
    m, keeper = manual_mining, stepped
    start = m.block()
    expected = price_drop(m)
    proxy.before_send(lambda tx: m.mine(1), count=1)  # a block lands while the keeper sends
    assert keeper.step().sent == 1
    read_block = m.block()
    m.mine(1)  # the next one holds the liquidation: the head moves on as a pass starts

    late = keeper.step(read_block)  # its reads pinned to read_block, the receipts from the head

    assert late.lost_in_simulation == 0 and late.sent == 0
    liquidated_once(m, start, expected)
    no_overlap(proxy, m)
    assert keeper.metrics.value("liquidations_mined") == len(expected)
    assert keeper.metrics.value("lost_races") == 0  # its own liquidations are not someone else's
    keeper.step()
    assert keeper.metrics.value("lost_races") == 0 and not keeper.sender.pending()


def test_restart_with_a_transaction_pending__killed_mid_broadcast__replaced_at_the_same_nonce(
    manual_mining: Market, proxy: FaultProxy, make_keeper, tmp_path: Path, dev_keys: list[str]
) -> None:
    m = manual_mining
    start = m.block()
    state = tmp_path / "keeper.sqlite"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    env["BALLAST_PRIVATE_KEY"] = dev_keys[3]
    proxy.delay(5, methods="eth_sendRawTransaction", count=1)  # the node takes it; no answer yet
    first = subprocess.Popen(
        keeper_cli()
        + ["run", "--rpc-url", proxy.url, "--deployment", str(m.deployment_file), "--state-db", str(state),
           "--metrics-port", str(port), "--poll-interval", "0.05", "--rpc-timeout", "30"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _healthy(port) or first.poll() is not None, timeout=40)
        expected = price_drop(m)
        wait_for(lambda: len(proxy.sends) == 1 and proxy.sends[0].forwarded, timeout=20)
    finally:
        first.send_signal(signal.SIGKILL)  # no chance to save anything more
        _, err = first.communicate(timeout=20)
    assert m.chain.pending_count() == 1 and "Traceback" not in err

    second = make_keeper(3, state=state.name, rpc_url=proxy.url)
    second.start()  # finds the transaction it does not know the fate of, still worth sending
    m.mine(1)
    second.step()

    done = liquidated_once(m, start, expected)
    assert {liq for _, liq in done} == {second.signer.address}
    no_overlap(proxy, m)
    assert set(proxy.sent_accounts().values()) == {1}  # the replacement kept the nonce
    assert second.metrics.value("replacements") == 1
    assert second.metrics.value("liquidations_mined") == len(expected)
    assert not second.sender.pending() and not second.state.locked_accounts()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False
