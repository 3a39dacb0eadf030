"""The ``ballast-keeper`` command line.

Every setting of :class:`keeper.settings.KeeperSettings` has a flag generated from its field, so
flags, environment variables and TOML keys never drift apart. Flags that are not given stay unset
(``None``) and do not override the environment or the config file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from keeper.settings import (
    ENV_ONLY_FIELDS,
    Deployment,
    DeploymentError,
    KeeperSettings,
    SettingsError,
    env_name,
    flag_name,
    load_deployment,
    load_settings,
)

__all__ = ["main", "run", "scan", "settings_from_params", "RUN_ONLY_FIELDS"]

F = TypeVar("F", bound=Callable[..., Any])

RUN_ONLY_FIELDS = frozenset(
    {
        "account_alias",
        "keystore",
        "password_file",
        "metrics_host",
        "metrics_port",
        "poll_interval",
        "block_time",
        "gas_fraction",
        "max_fee_gwei",
        "priority_fee_gwei",
        "base_fee_multiplier",
        "bump_percent",
        "stuck_after_blocks",
        "min_profit_usd",
        "dry_run",
        "once",
        "once_timeout",
        "max_pending_txs",
        "gas_limit_margin",
        "native_usd_market",
        "native_usd_price",
        "health_max_age",
    }
)
"""Settings that only matter to ``run`` (signing, sending, serving metrics)."""

_METAVARS = {
    "rpc_url": "URL",
    "chain_id": "ID",
    "fallback_rpc_url": "URL",
    "deployment": "FILE",
    "keystore": "FILE",
    "password_file": "FILE",
    "state_db": "FILE",
    "account_alias": "ALIAS",
    "metrics_host": "HOST",
    "shard": "K/N",
    "gas_fraction": "FRACTION",
    "log_level": "LEVEL",
    "native_usd_market": "NAME",
}


def _option_for(name: str) -> Callable[[F], F]:
    field = KeeperSettings.model_fields[name]
    default = field.get_default()
    shown = "" if default is None else f"; default {default}"
    help_text = f"{field.description} [env {env_name(name)}{shown}]"
    if field.annotation is bool:
        flag = flag_name(name)
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    metavar = _METAVARS.get(name, "NUMBER")
    return click.option(flag_name(name), name, default=None, metavar=metavar, help=help_text)


def _settings_options(fields: Iterable[str]) -> Callable[[F], F]:
    names = [n for n in fields if n not in ENV_ONLY_FIELDS]

    def decorate(func: F) -> F:
        for name in reversed(names):
            func = _option_for(name)(func)
        return click.option(
            "--config",
            "config_file",
            type=click.Path(dir_okay=False, path_type=str),
            envvar=env_name("config"),
            default=None,
            help=f"TOML file of settings (lowest precedence) [env {env_name('config')}].",
        )(func)

    return decorate


ALL_FIELDS = tuple(KeeperSettings.model_fields)
SCAN_FIELDS = tuple(n for n in ALL_FIELDS if n not in RUN_ONLY_FIELDS)


def settings_from_params(params: dict[str, Any]) -> KeeperSettings:
    """Turn click parameters (settings fields plus ``config_file``) into settings.

    :raises click.ClickException: with the readable settings error.
    """
    values = dict(params)
    config_file = values.pop("config_file", None)
    flags = {k: v for k, v in values.items() if k in KeeperSettings.model_fields}
    try:
        return load_settings(flags, config_file=config_file)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _prepare(settings: KeeperSettings) -> Deployment:
    try:
        deployment = load_deployment(settings.deployment)
        settings.check_chain_id(deployment.chain_id, f"deployment file {settings.deployment}")
    except (DeploymentError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    return deployment


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Ballast liquidation keeper: finds liquidatable accounts and liquidates them.

    Settings come from flags, then BALLAST_* environment variables, then a TOML file (--config).
    """


def _keeper_errors() -> tuple[type[BaseException], ...]:
    from keeper.engine import EngineReadError
    from keeper.rpc import RpcUnavailable
    from keeper.runner import StartupError

    return (StartupError, RpcUnavailable, EngineReadError)


@main.command()
@_settings_options(ALL_FIELDS)
def run(**params: Any) -> None:
    """Run the keeper: watch every account each block and liquidate what is liquidatable."""
    settings = settings_from_params(params)
    if not settings.dry_run:
        try:
            settings.require_signer()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
    deployment = _prepare(settings)

    from keeper.jsonlog import setup_logging
    from keeper.runner import Keeper

    setup_logging(settings.log_level, settings.log_json)
    keeper = Keeper(settings, deployment)
    try:
        keeper.connect(need_signer=not settings.dry_run)
        keeper.install_signal_handlers()
        code = keeper.run()
    except _keeper_errors() as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        keeper.close()
    sys.exit(code)


@main.command()
@_settings_options(SCAN_FIELDS)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="How many of the riskiest accounts to print.",
)
def scan(top: int, **params: Any) -> None:
    """One pass: print the riskiest accounts (equity, maintenance, margin ratio, distance)."""
    settings = settings_from_params(params)
    deployment = _prepare(settings)

    from rich.console import Console

    from keeper.jsonlog import setup_logging
    from keeper.report import risk_table
    from keeper.runner import Keeper

    setup_logging(settings.log_level, settings.log_json)
    keeper = Keeper(settings, deployment)
    try:
        keeper.connect(need_signer=False, use_state=False)
        risks, healths, head = keeper.scan()
    except _keeper_errors() as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        keeper.close()
    rows, agree = _on_chain_rows(risks, healths)
    console = Console(width=None if sys.stdout.isatty() else 160)
    title = (
        f"{deployment.network} (chain {deployment.chain_id}) at block {head.number}: "
        f"the {min(top, len(rows))} riskiest of {len(rows)} accounts"
    )
    console.print(risk_table(rows, top, title=title))
    liquidatable = sum(1 for h in healths.values() if h.liquidatable)
    click.echo(
        f"{len(rows)} accounts with positions, {liquidatable} liquidatable on-chain; "
        f"the local model agrees with the engine on {agree} of {len(rows)}"
    )


def _on_chain_rows(risks: list[Any], healths: dict[str, Any]) -> tuple[list[Any], int]:
    """Rows ranked by the model, with equity and maintenance from the engine's ``healths``."""
    from dataclasses import replace

    rows = []
    agree = 0
    for risk in risks:
        h = healths.get(risk.account)
        if h is None or risk.cross is None:
            rows.append(risk)
            continue
        if (h.equity, h.maintenance_req) == (risk.cross.equity, risk.cross.maintenance):
            agree += 1
        rows.append(replace(risk, cross=replace(risk.cross, equity=h.equity, maintenance=h.maintenance_req)))
    return rows, agree
