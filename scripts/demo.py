"""`ape run demo --network ethereum:local:foundry`: Ballast's main job on a local chain.

Deploys config/local.yaml on a fresh anvil, funds the pool and the insurance fund, opens positions
for a group of traders with leverage spread up to the market maximum (long and short, ETH and BTC),
then walks the prices down step by step. After each step, anyone may liquidate: a liquidator calls
`liquidate_many` on what `liquidatable_accounts` lists. Prints what happened at every step and a
final report.
"""

import sys
import time
from decimal import Decimal
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deploy import ROOT, deploy, load_config, local_contracts  # noqa: E402

WAD = 10**18
USD = 10**6
ETH, BTC = 0, 1

# (market, side, collateral USD, leverage): a spread of risk, long and short
BOOK = [
    (ETH, 1, 2_000, 2),
    (ETH, 1, 2_000, 5),
    (ETH, 1, 1_500, 8),
    (ETH, 1, 1_000, 9.5),
    (ETH, -1, 2_000, 6),
    (ETH, -1, 1_000, 9),
    (BTC, 1, 3_000, 4),
    (BTC, 1, 1_500, 7),
    (BTC, 1, 1_000, 11),
    (BTC, -1, 2_000, 10),
]
# price path: (ETH, BTC) in USD
PATH = [(2000, 60000), (1940, 58500), (1880, 57000), (1820, 55800), (1760, 54500), (1700, 53000), (1640, 52500)]


def usd(x: int) -> str:
    return f"{Decimal(x) / WAD:,.2f}"


@click.command(cls=ConnectedProviderCommand)
def cli(network):
    """Deploy, trade, crash the price, liquidate, report."""
    con = Console()
    started = time.time()
    cfg = load_config(ROOT / "config" / "local.yaml")
    deployer, lp, liquidator = accounts.test_accounts[0], accounts.test_accounts[1], accounts.test_accounts[2]
    record = deploy(cfg, deployer, project, chain, local=True)
    engine, pool, token, feeds = local_contracts(record, project)
    con.print(f"[bold]Ballast[/] deployed on {record['network']} (chain {record['chain_id']}): engine {engine.address}")

    token.mint(lp.address, 1_000_000 * USD, sender=deployer)
    token.approve(pool.address, 2**256 - 1, sender=lp)
    pool.deposit(1_000_000 * USD, sender=lp)
    token.mint(liquidator.address, 5_000 * USD, sender=deployer)
    token.approve(engine.address, 2**256 - 1, sender=liquidator)
    engine.fund_insurance(5_000 * USD, sender=liquidator)
    insurance_start = engine.insurance_fund()
    pool_start = pool.totalAssets()

    traders = []
    for i, (mid, side, coll, lev) in enumerate(BOOK):
        t = accounts.test_accounts[3 + i]
        token.mint(t.address, coll * USD, sender=deployer)
        token.approve(engine.address, 2**256 - 1, sender=t)
        engine.deposit(coll * USD, sender=t)
        price = PATH[0][mid]
        size = int(Decimal(coll) * Decimal(str(lev)) * WAD / price)
        engine.trade(mid, side * size, 2**256 - 1 if side > 0 else 0, sender=t)
        traders.append((t, mid, side, coll, lev))

    opened = Table(title="Positions opened")
    for col in ("trader", "market", "side", "collateral", "leverage", "size"):
        opened.add_column(col, justify="right")
    for t, mid, side, coll, lev in traders:
        p = engine.position(t.address, mid)
        opened.add_row(t.address[:10], record["markets"][mid]["name"], "long" if side > 0 else "short", f"{coll:,}", f"{lev}x", f"{Decimal(p.size) / WAD:.4f}")
    con.print(opened)

    partial = full = 0
    rewards = 0
    bad_debt = 0
    steps = Table(title="Price path and liquidations")
    for col in ("ETH", "BTC", "liquidatable", "liquidated", "partial", "full", "reward", "insurance"):
        steps.add_column(col, justify="right")
    for eth, btc in PATH[1:]:
        feeds[ETH].set_answer(eth * 10**8, sender=deployer)
        feeds[BTC].set_answer(btc * 10**8, sender=deployer)
        listed = engine.liquidatable_accounts(0, 1000)
        n_part = n_full = 0
        step_reward = 0
        if listed:
            tx = engine.liquidate_many(listed, sender=liquidator)
            for log in tx.decode_logs(engine.Liquidation):
                step_reward += log.reward
                if log.full:
                    n_full += 1
                else:
                    n_part += 1
            bad_debt += sum(b.amount for b in tx.decode_logs(engine.BadDebt))
        assert engine.liquidatable_accounts(0, 1000) == [], "an account was left liquidatable"
        partial += n_part
        full += n_full
        rewards += step_reward
        steps.add_row(f"{eth:,}", f"{btc:,}", str(len(listed)), str(n_part + n_full), str(n_part), str(n_full), usd(step_reward), usd(engine.insurance_fund()))
    con.print(steps)

    report = Table(title="Report")
    report.add_column("figure")
    report.add_column("value", justify="right")
    rows = [
        ("traders", str(len(traders))),
        ("liquidations, partial", str(partial)),
        ("liquidations, full", str(full)),
        ("bad debt (USD)", usd(bad_debt)),
        ("insurance fund start (USD)", usd(insurance_start)),
        ("insurance fund end (USD)", usd(engine.insurance_fund())),
        ("pool assets start (USD)", f"{Decimal(pool_start) / USD:,.2f}"),
        ("pool assets end (USD)", f"{Decimal(pool.totalAssets()) / USD:,.2f}"),
        ("keeper rewards (USD)", usd(rewards)),
        ("accounts left liquidatable", str(len(engine.liquidatable_accounts(0, 1000)))),
        ("wall time (s)", f"{time.time() - started:.1f}"),
    ]
    for r in rows:
        report.add_row(*r)
    con.print(report)
