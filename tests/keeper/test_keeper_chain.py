"""The keeper against a real anvil: 40 traders, a price drop, and the keeper liquidating.

Each test starts from the same market (Ape's isolation rewinds the chain after each test).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.request
from pathlib import Path

from conftest import ETH, Market, json_lines, keeper_cli, wait_for

from keeper.localchain import free_port


def _cli(market: Market, args: list[str], key: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    if key is not None:
        env["BALLAST_PRIVATE_KEY"] = key
    return subprocess.run(
        keeper_cli() + args + ["--rpc-url", market.url, "--deployment", str(market.deployment_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_once_cli__liquidates_every_liquidatable_account_and_no_healthy_one(
    fresh: Market, tmp_path: Path, dev_keys: list[str], accounts
) -> None:
    start = fresh.block()
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()
    assert 8 <= len(expected) <= 30, "the drop should leave a mix of liquidatable and healthy accounts"

    proc = _cli(fresh, ["run", "--once", "--metrics-port", "0", "--state-db", str(tmp_path / "k.sqlite")], key=dev_keys[3])

    assert proc.returncode == 0, proc.stderr
    done = fresh.liquidations(start)
    assert sorted(a for a, _ in done) == sorted(expected)  # each liquidatable one, once; no other
    assert {liquidator for _, liquidator in done} == {accounts[3].address}
    assert fresh.liquidatable() == set()
    summary = next(line for line in json_lines(proc.stderr) if line["msg"] == "one pass done")
    assert summary["liquidations_mined"] == len(expected)
    assert summary["liquidations_failed"] == 0 and summary["lost_races"] == 0


def test_scan_cli__prints_the_riskiest_accounts_as_a_table(fresh: Market) -> None:
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()

    proc = _cli(fresh, ["scan", "--top", "50"])

    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for column in ("account", "equity", "maintenance", "margin ratio", "distance"):
        assert column in out
    rows = [line for line in out.splitlines() if "0x" in line]
    assert len(rows) == len(fresh.traders)
    flagged = {line.split()[1] for line in rows if "liquidatable" in line}
    assert flagged == expected
    # riskiest first: every liquidatable row comes before every other row
    kinds = ["liquidatable" in line for line in rows]
    assert kinds == sorted(kinds, reverse=True)
    assert f"{len(fresh.traders)} accounts with positions, {len(expected)} liquidatable on-chain" in out
    assert f"agrees with the engine on {len(fresh.traders)} of {len(fresh.traders)}" in out


def test_run__liquidates_as_the_price_falls__and_serves_metrics_and_health(fresh: Market, make_keeper) -> None:
    port = free_port()
    keeper = make_keeper(metrics_port=port)
    start = fresh.block()
    thread = threading.Thread(target=keeper.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: keeper.processed is not None)
        first_drop = fresh.set_price(ETH, 1830)
        at_first = _liquidatable_at(fresh, first_drop)
        wait_for(lambda: _all_done(fresh, keeper))
        second_drop = fresh.set_price(ETH, 1700)
        at_second = _liquidatable_at(fresh, second_drop)
        wait_for(lambda: _all_done(fresh, keeper))

        metrics = _get(port, "/metrics")
        health_status, health = _get_json(port, "/healthz")
    finally:
        keeper.request_stop()
        thread.join(timeout=10)
    assert not thread.is_alive()

    assert at_first and at_second
    done = sorted(a for a, _ in fresh.liquidations(start))
    assert done == sorted(list(at_first) + list(at_second))  # one liquidation per episode, no more
    assert health_status == 200 and health["status"] == "ok"
    values = _samples(metrics)
    assert values["ballast_keeper_liquidations_mined_total"] == len(done)
    assert values["ballast_keeper_liquidations_failed_total"] == 0
    assert values["ballast_keeper_accounts_tracked"] == fresh.engine.read("n_accounts")  # full closes drop out
    assert values["ballast_keeper_rewards_usd_total"] > 0
    assert values["ballast_keeper_signer_balance_eth"] > 0
    for name in (
        "ballast_keeper_head_lag_blocks",
        "ballast_keeper_seconds_since_last_block",
        "ballast_keeper_liquidatable_seen",
        "ballast_keeper_liquidations_sent_total",
        "ballast_keeper_gas_spent_eth_total",
        "ballast_keeper_scan_duration_seconds_count",
        "ballast_keeper_lost_races_total",
        "ballast_keeper_unprofitable_skips_total",
    ):
        assert name in values, name


def test_dry_run__finds_and_simulates_but_sends_nothing(fresh: Market, make_keeper) -> None:
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()
    keeper = make_keeper(key_index=None, dry_run=True)
    keeper.start()
    before = fresh.block()

    result = keeper.step(force_sweep=True)

    assert set(result.liquidatable) == expected
    assert sum(p.expected_count for p in result.plans) == len(expected)
    assert fresh.block() == before and fresh.liquidatable() == expected


def test_unprofitable_batch__skipped_and_counted(fresh: Market, make_keeper) -> None:
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()
    keeper = make_keeper(min_profit_usd=1_000_000)
    keeper.start()

    result = keeper.step(force_sweep=True)

    assert result.unprofitable >= 1 and result.sent == 0
    assert keeper.metrics.value("unprofitable_skips") == result.unprofitable
    assert fresh.liquidatable() == expected


def test_account_opened_before_the_keeper_started__found_from_events_and_the_list(
    fresh: Market, make_keeper
) -> None:
    keeper = make_keeper()
    keeper.start()

    assert set(keeper.models) == set(fresh.traders)
    assert set(keeper.state.accounts()) == set(fresh.traders)
    assert keeper.state.checkpoint() == fresh.block()


def _liquidatable_at(market: Market, block: int) -> set[str]:
    healths, errors = market.engine.healths(market.traders, block)
    assert not errors
    return {a for a, h in healths.items() if h.liquidatable}


def _all_done(market: Market, keeper) -> bool:
    return not keeper.sender.pending() and not market.liquidatable() and keeper.processed == market.block()


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def _get_json(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:  # 503
        return e.code, json.loads(e.read())


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        out[name.split("{")[0] if "{" in name and "le=" in name else name] = float(value)
    return out


def test_cli_errors__wrong_rpc_url_chain_id_engine_deployment_and_unfunded_signer(
    fresh: Market, tmp_path: Path
) -> None:
    record = json.loads(fresh.deployment_file.read_text())
    dead = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}

    def run(args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            keeper_cli() + args, env={**env, **(extra_env or {})}, capture_output=True, text=True, timeout=60
        )

    # wrong RPC URL
    p = run(["scan", "--rpc-url", dead, "--rpc-retries", "1", "--deployment", str(fresh.deployment_file)])
    assert p.returncode == 1 and f"cannot reach the node at {dead}" in p.stderr and "Traceback" not in p.stderr

    # wrong chain id: the deployment says mainnet
    wrong_chain = tmp_path / "mainnet.json"
    wrong_chain.write_text(json.dumps({**record, "chain_id": 1}))
    p = run(["scan", "--rpc-url", fresh.url, "--deployment", str(wrong_chain)])
    assert p.returncode == 1 and "chain id mismatch: the node at" in p.stderr and "is chain 31337" in p.stderr

    # an engine address with no contract on this chain
    no_code = tmp_path / "stale.json"
    no_code.write_text(json.dumps({**record, "contracts": {**record["contracts"], "engine": "0x" + "12" * 20}}))
    p = run(["scan", "--rpc-url", fresh.url, "--deployment", str(no_code)])
    assert p.returncode == 1 and "no contract at the engine address" in p.stderr

    # a malformed deployment file
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**record, "contracts": {"engine": "nope"}}))
    p = run(["scan", "--rpc-url", fresh.url, "--deployment", str(broken)])
    assert p.returncode == 1 and "is malformed" in p.stderr and "contracts.engine" in p.stderr

    # a signer without funds
    empty_key = "0x" + "7e" * 32
    p = run(
        ["run", "--once", "--metrics-port", "0", "--state-db", str(tmp_path / "s.sqlite"), "--rpc-url", fresh.url, "--deployment", str(fresh.deployment_file)],
        {"BALLAST_PRIVATE_KEY": empty_key},
    )
    assert p.returncode == 1 and "has no funds" in p.stderr and "7e7e7e" not in p.stderr + p.stdout


def test_event_scan__ranges_the_provider_refuses__shrink__and_every_account_is_found(
    fresh: Market, make_keeper, monkeypatch
) -> None:
    from keeper.rpc import RpcError

    keeper = make_keeper(log_chunk_blocks=64)
    real = keeper.rpc.request
    refused: list[int] = []

    def picky(method: str, params: list | None = None):
        if method == "eth_getLogs":
            span = int(params[0]["toBlock"], 16) - int(params[0]["fromBlock"], 16) + 1
            if span > 5:
                refused.append(span)
                raise RpcError(method, -32005, "query exceeds the maximum block range of 5")
        return real(method, params)

    monkeypatch.setattr(keeper.rpc, "request", picky)
    keeper.start()

    assert refused and refused == sorted(refused, reverse=True)  # halved until accepted
    # it may grow again after successes, but never back to a size the provider refused (how far
    # it grows depends on how many blocks the scan covers)
    assert keeper._sizer.chunk < min(refused)
    assert set(keeper.state.accounts()) == set(fresh.traders)
    assert keeper.state.checkpoint() == fresh.block()
