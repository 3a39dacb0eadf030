"""Keeper settings: precedence, validation, keys, and the deployment file."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from keeper.settings import (
    DeploymentError,
    KeeperSettings,
    SettingsError,
    load_deployment,
    load_settings,
)
from keeper.shard import Shard

RAW_KEY = "0x" + "ab" * 32


@pytest.fixture
def toml_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "keeper.toml"
        path.write_text(text)
        return path

    return write


# -- precedence -------------------------------------------------------------------------------


def test_precedence__flag_over_env_over_toml(
    monkeypatch: pytest.MonkeyPatch, toml_file: Callable[[str], Path]
) -> None:
    config = toml_file('rpc_url = "http://toml:8545"\nbump_percent = 20\nshard = "1/2"\n')
    monkeypatch.setenv("BALLAST_RPC_URL", "http://env:8545")
    monkeypatch.setenv("BALLAST_BUMP_PERCENT", "15")

    s = load_settings({"rpc_url": "http://flag:8545"}, config_file=config)
    assert s.rpc_url == "http://flag:8545"  # flag beats env and TOML
    assert s.bump_percent == Decimal(15)  # env beats TOML
    assert s.shard == Shard(1, 2)  # TOML beats the default

    monkeypatch.delenv("BALLAST_RPC_URL")
    assert load_settings({}, config_file=config).rpc_url == "http://toml:8545"
    assert load_settings({}).rpc_url == "http://127.0.0.1:8545"


def test_precedence__unset_flags_do_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_DRY_RUN", "true")
    s = load_settings({"dry_run": None, "once": None, "rpc_url": None})
    assert s.dry_run is True
    assert s.once is False


def test_toml__kebab_case_keys_and_types(toml_file: Callable[[str], Path]) -> None:
    config = toml_file(
        'state-db = "/tmp/x.sqlite"\ngas-fraction = "1/4"\nmax-fee-gwei = 150.5\n'
        "full-sweep-blocks = 7\ndry-run = true\n"
    )
    s = load_settings(config_file=config)
    assert s.state_db == Path("/tmp/x.sqlite")
    assert s.gas_fraction == Fraction(1, 4)
    assert s.max_fee_cap_wei == 150_500_000_000
    assert s.full_sweep_blocks == 7
    assert s.dry_run is True


def test_defaults__as_documented() -> None:
    s = load_settings()
    assert s.state_db == Path("keeper-state.sqlite")
    assert s.gas_fraction == Fraction(1, 3)
    assert s.bump_percent == Decimal("12.5")
    assert s.shard == Shard(1, 1)
    assert s.signer_kind is None
    assert isinstance(s, KeeperSettings)


# -- validation messages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, needle",
    [
        ({"bump_percent": "12.4"}, "--bump-percent / BALLAST_BUMP_PERCENT"),
        ({"gas_fraction": "1/2"}, "at most 1/3"),
        ({"shard": "3/2"}, "--shard / BALLAST_SHARD: shard index must be between 1 and 2"),
        ({"rpc_url": "localhost:8545"}, "--rpc-url / BALLAST_RPC_URL: must be an http(s)://"),
        ({"metrics_port": "70000"}, "--metrics-port"),
        ({"poll_interval": "0"}, "--poll-interval"),
        ({"log_level": "LOUD"}, "--log-level"),
    ],
)
def test_invalid_value__message_names_flag_and_variable(flags: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(flags)
    assert needle in str(info.value)
    assert "pydantic" not in str(info.value)  # no links to library docs


def test_invalid_env__reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_FULL_SWEEP_BLOCKS", "often")
    with pytest.raises(SettingsError, match="BALLAST_FULL_SWEEP_BLOCKS"):
        load_settings()


def test_toml__unknown_key__reported(toml_file: Callable[[str], Path]) -> None:
    with pytest.raises(SettingsError, match="rpc_ulr: unknown setting"):
        load_settings(config_file=toml_file('rpc_ulr = "http://x"\n'))


def test_toml__missing_or_broken_file__reported(
    tmp_path: Path, toml_file: Callable[[str], Path]
) -> None:
    with pytest.raises(SettingsError, match="config file not found"):
        load_settings(config_file=tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config_file=toml_file("rpc_url = \n"))


# -- keys -------------------------------------------------------------------------------------


def test_raw_key__refused_on_a_non_local_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_PRIVATE_KEY", RAW_KEY)
    with pytest.raises(SettingsError) as info:
        load_settings({"chain_id": 1})
    message = str(info.value)
    assert "only accepted on a local chain" in message
    assert "ab" * 32 not in message  # the key is never echoed


@pytest.mark.parametrize("chain_id", [31337, 1337])
def test_raw_key__accepted_on_a_local_chain(monkeypatch: pytest.MonkeyPatch, chain_id: int) -> None:
    monkeypatch.setenv("BALLAST_PRIVATE_KEY", RAW_KEY[2:].upper())
    s = load_settings({"chain_id": chain_id})
    assert s.signer_kind == "raw"
    assert s.private_key is not None and s.private_key.get_secret_value() == RAW_KEY
    assert RAW_KEY not in repr(s)
    s.check_chain_id(chain_id)


def test_raw_key__checked_against_the_node_chain_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_PRIVATE_KEY", RAW_KEY)
    s = load_settings()  # no expected chain id: the check happens once connected
    s.check_chain_id(31337)
    with pytest.raises(SettingsError, match="chain 11155111"):
        s.check_chain_id(11155111)


def test_raw_key__not_from_flags_or_toml(toml_file: Callable[[str], Path]) -> None:
    with pytest.raises(SettingsError, match="BALLAST_PRIVATE_KEY"):
        load_settings({"private_key": RAW_KEY})
    with pytest.raises(SettingsError, match="must not hold private_key"):
        load_settings(config_file=toml_file(f'private-key = "{RAW_KEY}"\n'))


def test_raw_key__malformed__refused_without_echo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_PRIVATE_KEY", "0xdeadbeef")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "64 hex digits" in str(info.value)
    assert "deadbeef" not in str(info.value)


def test_keystore__needs_a_password_file(tmp_path: Path) -> None:
    keystore = tmp_path / "key.json"
    keystore.write_text("{}")
    password = tmp_path / "password"
    password.write_text("secret")
    with pytest.raises(SettingsError, match="needs --password-file"):
        load_settings({"keystore": str(keystore)})
    with pytest.raises(SettingsError, match="file not found"):
        load_settings({"keystore": str(keystore), "password_file": str(tmp_path / "missing")})
    s = load_settings({"keystore": str(keystore), "password_file": str(password)})
    assert s.signer_kind == "keystore"


def test_key_sources__only_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BALLAST_PRIVATE_KEY", RAW_KEY)
    with pytest.raises(SettingsError, match="choose one key source"):
        load_settings({"account_alias": "keeper"})


def test_require_signer__without_key__explains_the_options() -> None:
    with pytest.raises(SettingsError, match="--account-alias"):
        load_settings().require_signer()
    load_settings({"account_alias": "keeper"}).require_signer()


def test_chain_id__mismatch__reported() -> None:
    s = load_settings({"chain_id": 1})
    s.check_chain_id(1)
    with pytest.raises(SettingsError, match="reports 5, but --chain-id"):
        s.check_chain_id(5)


# -- deployment file --------------------------------------------------------------------------


def test_deployment__valid__loaded_with_checksummed_addresses(
    deployment_file: Callable[..., Path],
) -> None:
    dep = load_deployment(deployment_file())
    assert dep.chain_id == 31337
    assert dep.deploy_block == 7
    assert dep.contracts.engine == "0x" + "11" * 20
    assert dep.contracts.oracles["ETH-USD"] == "0x" + "44" * 20


def test_deployment__missing_file__says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(
        DeploymentError, match="deployment file not found: .*nope.json.*ape run deploy"
    ):
        load_deployment(tmp_path / "nope.json")
    with pytest.raises(DeploymentError, match="not a file"):
        load_deployment(tmp_path)


def test_deployment__not_json__line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "network": "local",\n  oops\n}')
    with pytest.raises(DeploymentError, match="not valid JSON: .* line 3 column 3"):
        load_deployment(path)
    path.write_text("[1, 2]")
    with pytest.raises(DeploymentError, match="must hold a JSON object"):
        load_deployment(path)


def test_deployment__missing_and_malformed_keys__each_named(
    deployment_file: Callable[..., Path],
) -> None:
    path = deployment_file(chain_id="one", contracts={"engine": "0x1234", "pool": "0x" + "22" * 20})
    data = json.loads(path.read_text())
    del data["deploy_block"]
    path.write_text(json.dumps(data))
    with pytest.raises(DeploymentError) as info:
        load_deployment(path)
    message = str(info.value)
    assert "is malformed" in message
    assert "  deploy_block: missing" in message
    assert "  contracts.collateral: missing" in message
    assert "  contracts.engine: not an Ethereum address: '0x1234'" in message
    assert "  chain_id: " in message
    assert "contracts.pool" not in message
