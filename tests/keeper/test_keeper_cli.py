"""The ``ballast-keeper`` command line (without a chain)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from keeper.cli import main
from keeper.localchain import free_port


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_help__lists_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "run" in result.output and "scan" in result.output


@pytest.mark.parametrize("command", ["scan", "run"])
def test_command_help__shows_flags_and_env_names(runner: CliRunner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "--rpc-url" in result.output and "BALLAST_RPC_URL" in result.output
    assert "--shard" in result.output and "--config" in result.output
    assert "--private-key" not in result.output  # environment only


def test_scan_help__leaves_out_sending_flags(runner: CliRunner) -> None:
    result = runner.invoke(main, ["scan", "--help"])
    assert "--bump-percent" not in result.output
    assert "--top" in result.output


def test_scan__missing_deployment__clear_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["scan", "--deployment", str(tmp_path / "none.json")])
    assert result.exit_code == 1
    assert "deployment file not found" in result.output
    assert "Traceback" not in result.output


def test_scan__invalid_flag_value__clear_error(runner: CliRunner) -> None:
    result = runner.invoke(main, ["scan", "--shard", "0/2"])
    assert result.exit_code == 1
    assert "--shard / BALLAST_SHARD: shard index must be between 1 and 2" in result.output


def test_scan__valid_setup__reaches_the_node(
    runner: CliRunner, deployment_file: Callable[..., Path], tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = tmp_path / "keeper.toml"
    config.write_text(f'deployment = "{deployment_file()}"\nrpc-url = "{dead}"\nrpc-retries = 0\n')
    result = runner.invoke(main, ["scan", "--config", str(config)])
    assert result.exit_code == 1
    assert f"cannot reach the node at {dead} (1 attempt): connection refused" in result.output
    assert "Traceback" not in result.output


def test_run__without_signer__asks_for_one_unless_dry_run(
    runner: CliRunner, deployment_file: Callable[..., Path]
) -> None:
    dep = str(deployment_file())
    dead = f"http://127.0.0.1:{free_port()}"
    result = runner.invoke(main, ["run", "--deployment", dep, "--rpc-url", dead])
    assert result.exit_code == 1 and "no signer configured" in result.output
    result = runner.invoke(main, ["run", "--deployment", dep, "--dry-run", "--rpc-url", dead, "--rpc-retries", "0"])
    assert result.exit_code == 1 and "cannot reach the node" in result.output


def test_run__raw_key_with_a_mainnet_deployment__refused(
    runner: CliRunner, deployment_file: Callable[..., Path]
) -> None:
    dep = str(deployment_file(chain_id=1))
    result = runner.invoke(
        main, ["run", "--deployment", dep], env={"BALLAST_PRIVATE_KEY": "0x" + "cd" * 32}
    )
    assert result.exit_code == 1
    assert "only accepted on a local chain" in result.output
    assert "cd" * 32 not in result.output


def test_run__chain_id_flag_against_the_deployment__checked(
    runner: CliRunner, deployment_file: Callable[..., Path]
) -> None:
    result = runner.invoke(
        main, ["run", "--dry-run", "--chain-id", "1", "--deployment", str(deployment_file())]
    )
    assert result.exit_code == 1
    assert "chain id mismatch" in result.output
