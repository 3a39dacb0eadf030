"""`ape run deploy`: deploys Ballast from a YAML config and writes deployments/<network>.json.

    ape run deploy --network ethereum:local:foundry                      # mocks, config/local.yaml
    ape run deploy --network ethereum:sepolia:node --account deployer   # config/sepolia.yaml
"""

import sys
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deploy import ROOT, ConfigError, deploy, load_config, write_deployment  # noqa: E402

LOCAL_CHAIN_IDS = (31337, 1337)


def default_config(network_name: str) -> Path:
    """config/<network>.yaml, with forks sharing their network's file (mainnet-fork -> mainnet)."""
    return ROOT / "config" / f"{network_name.removesuffix('-fork')}.yaml"


@click.command(cls=ConnectedProviderCommand)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None, help="YAML config (default: config/<network>.yaml)")
@click.option("--account", "alias", default=None, help="Ape account alias of the deployer (needed off local chains and forks)")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Directory of the deployment file (default: deployments/)")
def cli(network, config_path, alias, out_dir):
    """Deploy Ballast: pool, engine, oracles and markets (and mocks on a local chain)."""
    name = network.name
    local = name == "local" or chain.chain_id in LOCAL_CHAIN_IDS
    path = Path(config_path) if config_path else default_config(name)
    try:
        cfg = load_config(path)
    except ConfigError as e:
        raise click.ClickException(str(e))
    if alias:
        deployer = accounts.load(alias)
    elif local or name.endswith("-fork"):
        deployer = accounts.test_accounts[0]
    else:
        raise click.ClickException(f"--account ALIAS is required on {name}")
    try:
        record = deploy(cfg, deployer, project, chain, local=local)
    except ConfigError as e:
        raise click.ClickException(str(e))
    out = write_deployment(record, Path(out_dir) if out_dir else None)
    click.echo(f"engine {record['contracts']['engine']}")
    click.echo(f"pool   {record['contracts']['pool']}")
    for m in record["markets"]:
        click.echo(f"market {m['id']} {m['name']} oracle {m['oracle']}")
    click.echo(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
