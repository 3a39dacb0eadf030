"""Operations against a real anvil: SIGTERM, /metrics and /healthz of the CLI, RPC failover,
and signing with an Ape account alias or a keystore file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ETH, Market, json_lines, keeper_cli, wait_for
from eth_account import Account

from keeper.localchain import free_port
from keeper.settings import load_settings
from keeper.signer import SignerError, load_signer


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")}
    env.update(extra)
    return env


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def _metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return None


def test_run_cli__serves_metrics__liquidates__and_on_sigterm_saves_state_and_exits_0(
    fresh: Market, tmp_path: Path, dev_keys: list[str]
) -> None:
    port = free_port()
    state = tmp_path / "keeper.sqlite"
    start = fresh.block()
    proc = subprocess.Popen(
        keeper_cli()
        + ["run", "--rpc-url", fresh.url, "--deployment", str(fresh.deployment_file), "--state-db", str(state),
           "--metrics-port", str(port), "--poll-interval", "0.05"],
        env=_env(BALLAST_PRIVATE_KEY=dev_keys[3]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _status(port, "/healthz") == 200, timeout=30)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            metrics = r.read().decode()
        assert f"ballast_keeper_accounts_tracked {float(len(fresh.traders))}" in metrics
        assert _status(port, "/nope") == 404

        price_block = fresh.set_price(ETH, 1800)
        expected = fresh.liquidatable(block=price_block)  # the running keeper may already be at work
        wait_for(lambda: not fresh.liquidatable(), timeout=30)
        wait_for(lambda: _metric(port, "ballast_keeper_liquidations_mined_total") == len(expected), timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)

    assert proc.returncode == 0, err
    lines = json_lines(err)
    assert all({"ts", "level", "logger", "msg"} <= set(line) for line in lines)
    stopped = [line for line in lines if line["msg"] == "keeper stopped"]
    assert stopped and stopped[0]["liquidations_mined"] == len(expected)
    assert sorted(a for a, _ in fresh.liquidations(start)) == sorted(expected)
    with sqlite3.connect(state) as db:
        checkpoint = int(db.execute("SELECT value FROM meta WHERE key = 'checkpoint'").fetchone()[0])
        pending = db.execute("SELECT count(*) FROM pending_txs").fetchone()[0]
    assert checkpoint == fresh.block() and pending == 0


def test_failover__a_dead_primary_url__the_fallback_takes_over(fresh: Market, make_keeper) -> None:
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()
    dead = f"http://127.0.0.1:{free_port()}"
    keeper = make_keeper(rpc_url=dead, fallback_rpc_url=fresh.url, rpc_retries=2)
    keeper.start()

    result = keeper.step(force_sweep=True)
    keeper.step()

    assert set(result.liquidatable) == expected and fresh.liquidatable() == set()
    assert keeper.rpc.stats.failovers >= 1
    assert keeper.metrics.value("rpc_failovers") >= 1
    assert keeper.metrics.value("rpc_requests", endpoint=dead, outcome="error") >= 1


def test_ape_alias__signs_through_an_ape_keyfile_account(
    fresh: Market, tmp_path: Path, dev_keys: list[str], accounts
) -> None:
    data = tmp_path / "ape"
    (data / "accounts").mkdir(parents=True)
    (data / "accounts" / "keeper.json").write_text(json.dumps(Account.encrypt(dev_keys[6], "s3cret", iterations=1024)))
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    fresh.set_price(ETH, 1800)
    expected = fresh.liquidatable()

    proc = subprocess.run(
        keeper_cli()
        + ["run", "--once", "--account-alias", "keeper", "--password-file", str(password),
           "--rpc-url", fresh.url, "--deployment", str(fresh.deployment_file),
           "--state-db", str(tmp_path / "k.sqlite"), "--metrics-port", "0"],
        env=_env(APE_DATA_FOLDER=str(data)),
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert proc.returncode == 0, proc.stderr
    ready = next(line for line in json_lines(proc.stderr) if line["msg"] == "signer ready")
    assert ready["source"] == "ape:keeper" and ready["signer"] == accounts[6].address
    assert {liq for _, liq in fresh.liquidations(0)} >= {accounts[6].address}
    assert fresh.liquidatable() == set() and expected


def test_keystore__loaded_with_its_password_file__wrong_password_refused(
    tmp_path: Path, dev_keys: list[str], accounts
) -> None:
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(dev_keys[7], "right", iterations=1024)))
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("right\n")
    bad.write_text("wrong\n")

    signer = load_signer(load_settings({"keystore": str(keystore), "password_file": str(good)}), chain_id=1)
    assert signer is not None and signer.address == accounts[7].address
    assert dev_keys[7][2:] not in repr(signer)
    with pytest.raises(SignerError, match="wrong password"):
        load_signer(load_settings({"keystore": str(keystore), "password_file": str(bad)}), chain_id=1)
    not_a_keystore = tmp_path / "other.json"
    not_a_keystore.write_text("{}")
    with pytest.raises(SignerError, match="not an Ethereum keystore"):
        load_signer(load_settings({"keystore": str(not_a_keystore), "password_file": str(good)}), chain_id=1)


def test_raw_key__refused_when_the_node_is_not_a_local_chain(monkeypatch: pytest.MonkeyPatch, dev_keys: list[str]) -> None:
    monkeypatch.setenv("BALLAST_PRIVATE_KEY", dev_keys[3])
    settings = load_settings()
    assert load_signer(settings, chain_id=31337) is not None
    with pytest.raises(SignerError, match="only accepted on a local chain"):
        load_signer(settings, chain_id=10)
