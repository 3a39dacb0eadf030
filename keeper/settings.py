"""Typed keeper configuration and the deployment file.

Precedence, highest first: command-line flags, ``BALLAST_*`` environment variables, an optional
TOML file (``--config path``; keys are the field names, ``snake_case`` or ``kebab-case``), then the
defaults below. Every field ``name`` has the flag ``--name-with-dashes`` and the variable
``BALLAST_NAME``.

Keys: an Ape account alias (``account_alias``), or a keystore file with a password file
(``keystore`` + ``password_file``), or a raw private key. The raw key is read only from the
``BALLAST_PRIVATE_KEY`` environment variable (never a flag or the TOML file, where it would end up
in shell history or on disk) and only on a local chain (chain id 31337 or 1337). With no key, the
keeper can still ``scan`` and ``--dry-run``.

Invalid values raise :class:`SettingsError` whose message names the flag and the variable.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from keeper.addresses import normalize_address
from keeper.fees import MIN_BUMP_PERCENT, gwei_to_wei
from keeper.shard import Shard, parse_shard
from keeper.units import WAD

__all__ = [
    "ENV_PREFIX",
    "ENV_ONLY_FIELDS",
    "LOCAL_CHAIN_IDS",
    "SettingsError",
    "DeploymentError",
    "KeeperSettings",
    "Deployment",
    "DeploymentContracts",
    "DeploymentMarket",
    "load_settings",
    "load_deployment",
    "read_toml_config",
    "flag_name",
    "env_name",
]

ENV_PREFIX = "BALLAST_"
LOCAL_CHAIN_IDS = frozenset({31337, 1337})
"""Chain ids on which a raw private key from the environment is accepted."""

_RPC_SCHEMES = ("http://", "https://", "ws://", "wss://")
ENV_ONLY_FIELDS = frozenset({"private_key"})
"""Settings read only from the environment (secrets)."""


class SettingsError(ValueError):
    """Invalid keeper configuration; the message is meant for the operator."""


class DeploymentError(ValueError):
    """A missing or malformed deployment file; the message is meant for the operator."""


def flag_name(field: str) -> str:
    """The command-line flag of a settings field (``bump_percent`` -> ``--bump-percent``)."""
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of a field (``bump_percent`` -> ``BALLAST_BUMP_PERCENT``)."""
    return ENV_PREFIX + field.upper()


def _rpc_url(value: str) -> str:
    value = value.strip()
    if not (value.startswith(_RPC_SCHEMES) or value.endswith(".ipc")):
        raise ValueError("must be an http(s):// or ws(s):// URL, or a path to an .ipc file")
    return value


def _private_key(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value().strip()
    hexpart = raw[2:] if raw.lower().startswith("0x") else raw
    if len(hexpart) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hexpart):
        # Never echo the value: it is a secret even when malformed.
        raise ValueError("must be 32 bytes of hex (64 hex digits, optional 0x)")
    return SecretStr("0x" + hexpart.lower())


def _existing_file(value: Path) -> Path:
    path = value.expanduser()
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path


RpcUrl = Annotated[str, AfterValidator(_rpc_url)]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
ShardSpec = Annotated[Shard, NoDecode, BeforeValidator(parse_shard)]


class KeeperSettings(BaseSettings):
    """All keeper settings. Build it with :func:`load_settings` to get the precedence right."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    # -- connection --------------------------------------------------------------------------
    rpc_url: RpcUrl = Field("http://127.0.0.1:8545", description="JSON-RPC URL of the node.")
    fallback_rpc_url: RpcUrl | None = Field(
        None, description="Second JSON-RPC URL, used when the first one fails."
    )
    chain_id: int | None = Field(
        None, gt=0, description="Expected chain id; the node and deployment must match it."
    )
    deployment: Path = Field(
        Path("deployments/local.json"), description="Deployment file written by the deploy script."
    )

    # -- signer ------------------------------------------------------------------------------
    account_alias: str | None = Field(
        None, min_length=1, description="Ape account alias to sign with."
    )
    keystore: ExistingFile | None = Field(
        None, description="Ethereum keystore (JSON) file to sign with."
    )
    password_file: ExistingFile | None = Field(
        None, description="File holding the keystore (or Ape account) password."
    )
    private_key: Annotated[SecretStr, AfterValidator(_private_key)] | None = Field(
        None, description="Raw key: environment BALLAST_PRIVATE_KEY only, local chains only."
    )

    # -- state and operations ----------------------------------------------------------------
    state_db: Path = Field(Path("keeper-state.sqlite"), description="SQLite state file.")
    metrics_host: str = Field("127.0.0.1", min_length=1, description="Metrics server address.")
    metrics_port: int = Field(
        9108, ge=0, le=65535, description="Metrics server port (/metrics, /healthz); 0 disables it."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    log_json: bool = Field(True, description="Write logs as JSON lines.")

    # -- scanning ----------------------------------------------------------------------------
    poll_interval: float = Field(
        1.0, gt=0, le=3600, description="Seconds between polls for a new block."
    )
    block_time: float | None = Field(
        None,
        ge=0,
        le=3600,
        description=(
            "Seconds between blocks, if known (default: learned from block timestamps); 0 on a "
            "chain that mines on demand: poll every poll_interval."
        ),
    )
    full_sweep_blocks: int = Field(
        20, ge=1, description="Check every account on-chain at least once per this many blocks."
    )
    candidate_distance: float = Field(
        0.05, ge=0, description="Confirm accounts within this relative price move of liquidation."
    )
    max_candidates: int = Field(2_000, ge=1, description="Most accounts confirmed per block.")
    healths_batch: int = Field(
        500,
        ge=1,
        le=1000,
        description="Accounts per healths() call (the view returns at most 1000).",
    )
    sweep_page: int = Field(
        1000,
        ge=1,
        le=1000,
        description="Account list entries per liquidatable_accounts() call in a full sweep.",
    )
    log_chunk_blocks: int = Field(
        2_000, ge=1, description="Initial block range of an event query (shrinks when refused)."
    )
    shard: ShardSpec = Field(
        Shard(1, 1), description="This instance's share of the accounts, k/n with 1 <= k <= n."
    )

    rpc_timeout: float = Field(10.0, gt=0, le=600, description="Seconds per RPC request.")
    rpc_retries: int = Field(
        4, ge=0, le=100, description="Retries of a failed RPC request (with backoff, over both URLs)."
    )
    rpc_batch_size: int = Field(
        1000, ge=1, le=10_000, description="Most JSON-RPC calls per batched request (1: no batches)."
    )

    # -- sending -----------------------------------------------------------------------------
    max_pending_txs: int = Field(
        16, ge=1, le=256, description="Most liquidation transactions pending at once."
    )
    gas_limit_margin: Decimal = Field(
        Decimal("0.05"), ge=0, le=1, description="Gas limit above eth_estimateGas, as a fraction."
    )
    native_usd_market: str = Field(
        "ETH-USD", min_length=1, description="Market whose price values the gas token in USD."
    )
    native_usd_price: Decimal | None = Field(
        None, gt=0, description="Fixed USD price of the gas token (instead of a market)."
    )
    gas_fraction: Fraction = Field(
        Fraction(1, 3), description="Most of the block gas limit one transaction may use (<= 1/3)."
    )
    max_fee_gwei: Decimal = Field(
        Decimal(300), gt=0, description="Cap on maxFeePerGas, gwei (replacements stop there)."
    )
    priority_fee_gwei: Decimal = Field(
        Decimal(1), ge=0, description="maxPriorityFeePerGas of a new transaction, gwei."
    )
    base_fee_multiplier: Decimal = Field(
        Decimal(2), ge=1, description="maxFeePerGas = base fee * this + priority fee."
    )
    bump_percent: Decimal = Field(
        MIN_BUMP_PERCENT,
        ge=MIN_BUMP_PERCENT,
        le=Decimal(1000),
        description="Fee increase of a replacement, percent (at least 12.5).",
    )
    stuck_after_blocks: int = Field(
        3, ge=1, description="Replace a pending transaction not mined after this many blocks."
    )
    min_profit_usd: Decimal = Field(
        Decimal(0), ge=0, description="Skip a batch whose reward minus gas is below this, USD."
    )
    dry_run: bool = Field(False, description="Find and simulate liquidations, send nothing.")
    once: bool = Field(False, description="Run one pass, then exit.")
    once_timeout: float = Field(
        60.0, ge=0, description="Seconds --once waits for its transactions to be mined."
    )
    health_max_age: float = Field(
        60.0, gt=0, description="/healthz fails when no pass finished for this many seconds."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Source order: init values (flags) > environment > TOML file of :func:`load_settings`."""
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @field_validator("gas_fraction")
    @classmethod
    def _gas_fraction_bounds(cls, value: Fraction) -> Fraction:
        if not 0 < value <= Fraction(1, 3):
            raise ValueError("must be above 0 and at most 1/3 of the block gas limit")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> KeeperSettings:
        chosen = [
            name
            for name, value in (
                ("account_alias", self.account_alias),
                ("keystore", self.keystore),
                ("private_key", self.private_key),
            )
            if value is not None
        ]
        if len(chosen) > 1:
            raise ValueError(
                "choose one key source, got " + " and ".join(_describe(n) for n in chosen)
            )
        if self.keystore is not None and self.password_file is None:
            raise ValueError(f"{_describe('keystore')} needs {_describe('password_file')}")
        if self.password_file is not None and self.keystore is None and self.account_alias is None:
            raise ValueError(
                f"{_describe('password_file')} is only used with {_describe('keystore')} "
                f"or {_describe('account_alias')}"
            )
        if self.private_key is not None and self.chain_id is not None:
            _check_raw_key_chain(self.chain_id, "--chain-id")
        return self

    # -- derived values ----------------------------------------------------------------------

    @property
    def signer_kind(self) -> Literal["alias", "keystore", "raw"] | None:
        """Which key source is configured, or ``None`` for a read-only keeper."""
        if self.account_alias is not None:
            return "alias"
        if self.keystore is not None:
            return "keystore"
        if self.private_key is not None:
            return "raw"
        return None

    @property
    def max_fee_cap_wei(self) -> int:
        """``max_fee_gwei`` in wei per gas."""
        return gwei_to_wei(self.max_fee_gwei)

    @property
    def priority_fee_wei(self) -> int:
        """``priority_fee_gwei`` in wei per gas."""
        return gwei_to_wei(self.priority_fee_gwei)

    @property
    def min_profit_wad(self) -> int:
        """``min_profit_usd`` in WAD USD."""
        return int(self.min_profit_usd * WAD)

    def check_chain_id(self, actual: int, source: str = "the node") -> None:
        """Check the chain id reported by ``source`` (the node or the deployment file).

        :raises SettingsError: if it differs from ``chain_id``, or if a raw key is configured and
            ``actual`` is not a local chain.
        """
        if self.chain_id is not None and actual != self.chain_id:
            raise SettingsError(
                f"chain id mismatch: {source} reports {actual}, but --chain-id / "
                f"{env_name('chain_id')} expects {self.chain_id}"
            )
        if self.private_key is not None:
            try:
                _check_raw_key_chain(actual, source)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None

    def require_signer(self) -> None:
        """:raises SettingsError: if no key source is configured (needed to send)."""
        if self.signer_kind is None:
            raise SettingsError(
                "no signer configured: pass --account-alias, or --keystore with --password-file "
                f"(or set {env_name('private_key')} on a local chain), or use --dry-run"
            )


def _describe(field: str) -> str:
    if field in ENV_ONLY_FIELDS:
        return env_name(field)
    return f"{flag_name(field)} / {env_name(field)}"


def _check_raw_key_chain(chain_id: int, source: str) -> None:
    if chain_id not in LOCAL_CHAIN_IDS:
        raise ValueError(
            f"a raw private key ({env_name('private_key')}) is only accepted on a local chain "
            f"(chain id {sorted(LOCAL_CHAIN_IDS)}), but {source} is chain {chain_id}; "
            "use --account-alias or --keystore with --password-file"
        )


# -- sources ----------------------------------------------------------------------------------

_CONFIG_FILE: ContextVar[Path | None] = ContextVar("keeper_config_file", default=None)


def read_toml_config(path: Path) -> dict[str, Any]:
    """Read a keeper TOML file into field values (kebab-case keys become snake_case).

    :raises SettingsError: if the file is missing, is not TOML, or holds a private key.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SettingsError(f"config file not found: {path}") from None
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    values = {str(k).replace("-", "_"): v for k, v in data.items()}
    for secret in ENV_ONLY_FIELDS & values.keys():
        raise SettingsError(
            f"config file {path} must not hold {secret}: set {env_name(secret)} in the environment"
        )
    return values


class _TomlSource(PydanticBaseSettingsSource):
    """Settings from the TOML file named by the current :func:`load_settings` call."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ is used instead

    def __call__(self) -> dict[str, Any]:
        path = _CONFIG_FILE.get()
        return {} if path is None else read_toml_config(path)


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = [f"invalid keeper settings ({origin}):"]
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:
            lines.append(f"  {msg}")
            continue
        field = loc[0]
        where = _describe(field) if field in KeeperSettings.model_fields else field
        detail = ""
        if (
            field not in ENV_ONLY_FIELDS
            and err["type"] not in {"missing", "extra_forbidden"}
            and "input" in err
            and "got" not in msg
        ):
            detail = f" (got {err['input']!r})"
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        lines.append(f"  {where}: {msg}{detail}")
    return "\n".join(lines)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    config_file: str | Path | None = None,
) -> KeeperSettings:
    """Build :class:`KeeperSettings` from flags, ``BALLAST_*`` environment and a TOML file.

    :param flags: field values from the command line; ``None`` values mean "not given".
    :param config_file: optional TOML file, lowest precedence above the defaults.
    :raises SettingsError: with one readable line per problem.
    """
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    for secret in ENV_ONLY_FIELDS & given.keys():
        raise SettingsError(f"{secret} can only be set with {env_name(secret)} in the environment")
    path = Path(config_file).expanduser() if config_file is not None else None
    token = _CONFIG_FILE.set(path)
    try:
        return KeeperSettings(**given)
    except ValidationError as exc:
        origin = "flags, environment" + (f", config file {path}" if path else "")
        raise SettingsError(_format_validation_error(exc, origin)) from None
    finally:
        _CONFIG_FILE.reset(token)


# -- deployment file ----------------------------------------------------------------------------

Address = Annotated[str, AfterValidator(normalize_address)]


class DeploymentContracts(BaseModel):
    """Contract addresses of a deployment. Other keys are kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    engine: Address
    pool: Address
    collateral: Address
    oracles: dict[str, Address] = Field(default_factory=dict)
    """Oracle adapters by name (for example ``{"ETH-USD": "0x..."}``)."""


class DeploymentMarket(BaseModel):
    """A market of the deployment: its engine id and name (other keys are kept as they are)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: int = Field(ge=0)
    name: str = Field(min_length=1)
    oracle: Address | None = None


class Deployment(BaseModel):
    """The deployment file written by ``ape run deploy`` (``deployments/<network>.json``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    network: str = Field(min_length=1)
    chain_id: int = Field(gt=0)
    deploy_block: int = Field(ge=0)
    contracts: DeploymentContracts
    markets: list[DeploymentMarket] = Field(default_factory=list)

    def market_names(self) -> dict[int, str]:
        """Market names by engine id (from ``markets``, else from ``contracts.oracles``' order)."""
        if self.markets:
            return {m.id: m.name for m in self.markets}
        return dict(enumerate(self.contracts.oracles))


def load_deployment(path: str | Path) -> Deployment:
    """Read and validate a deployment file.

    :raises DeploymentError: naming the file and each missing or malformed key.
    """
    path = Path(path).expanduser()
    hint = "run `ape run deploy` first, or pass --deployment / " + env_name("deployment")
    if not path.exists():
        raise DeploymentError(f"deployment file not found: {path} ({hint})")
    if not path.is_file():
        raise DeploymentError(f"deployment path is not a file: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DeploymentError(f"deployment file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DeploymentError(
            f"deployment file {path} is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    if not isinstance(data, dict):
        raise DeploymentError(f"deployment file {path} must hold a JSON object")
    try:
        return Deployment.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"  {key}: missing")
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"  {key}: {msg}")
        raise DeploymentError(
            f"deployment file {path} is malformed:\n" + "\n".join(problems)
        ) from None
