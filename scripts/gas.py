"""`ape run gas --network ethereum:local:foundry`: measures the gas of the protocol's main calls.

Deploys config/local.yaml on a fresh local chain, brings it to a steady state (a funded pool and
insurance fund, a liquidator that already holds tokens), then measures each call from its receipt.
Prints a table with the targets and writes reports/gas.json.
"""

import json
import sys
from typing import Any
from pathlib import Path

import click
from ape import accounts, chain, project
from ape.cli import ConnectedProviderCommand

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deploy import ROOT, deploy, load_config, local_contracts  # noqa: E402

WAD = 10**18
ETH = 0
TARGETS = {"liquidate_one_position": 150_000, "liquidate_many_50_per_account": 60_000}


def measure() -> dict[str, int]:
    cfg = load_config(ROOT / "config" / "local.yaml")
    deployer, lp, liquidator = accounts.test_accounts[0], accounts.test_accounts[1], accounts.test_accounts[2]
    record = deploy(cfg, deployer, project, chain, local=True)
    engine, pool, token, feeds = local_contracts(record, project)
    feed = feeds[ETH]
    usd = 10**6

    token.mint(lp.address, 10_000_000 * usd, sender=deployer)
    token.approve(pool.address, 2**256 - 1, sender=lp)
    pool.deposit(5_000_000 * usd, sender=lp)
    token.mint(liquidator.address, 1_000 * usd, sender=deployer)
    token.approve(engine.address, 2**256 - 1, sender=liquidator)
    engine.fund_insurance(500 * usd, sender=liquidator)

    traders = [accounts.test_accounts.generate_test_account() for _ in range(53)]
    for t in traders:
        deployer.transfer(t, 10**18)
        token.mint(t.address, 2_000 * usd, sender=deployer)
        token.approve(engine.address, 2**256 - 1, sender=t)

    gas: dict[str, int] = {}
    first, other = traders[0], traders[1]
    gas["deposit"] = engine.deposit(1_000 * usd, sender=first).gas_used
    gas["deposit_top_up"] = engine.deposit(100 * usd, sender=first).gas_used
    gas["trade_open"] = engine.trade(ETH, 4 * WAD, 2**256 - 1, sender=first).gas_used
    gas["trade_increase"] = engine.trade(ETH, WAD // 2, 2**256 - 1, sender=first).gas_used
    gas["trade_close"] = engine.trade(ETH, -(4 * WAD + WAD // 2), 0, sender=first).gas_used
    gas["withdraw"] = engine.withdraw(500 * usd, sender=first).gas_used

    # one liquidation of an account with one position, partial and full
    for t in traders:
        if t is not first:
            engine.deposit(1_000 * usd, sender=t)
            engine.trade(ETH, 4 * WAD, 2**256 - 1, sender=t)
    # an hour later ETH is 6% lower: with the volatility term that one move adds (about 8% of
    # notional against a 5% bracket), every trader is liquidatable and a liquidation is partial
    chain.pending_timestamp = chain.blocks.head.timestamp + 3600
    feed.set_answer(1_880 * 10**8, sender=deployer)
    tx = engine.liquidate(other.address, sender=liquidator)
    assert _fractions(engine, tx) == [False], "the single liquidation must be partial"
    gas["liquidate_one_position"] = tx.gas_used

    batch = [t.address for t in traders[3:53]]
    assert len(batch) == 50 and all(engine.health(a).liquidatable for a in batch)
    tx = engine.liquidate_many(batch, sender=liquidator)
    assert _fractions(engine, tx) == [False] * 50, "partial closes, like the single one"
    gas["liquidate_many_50"] = tx.gas_used
    gas["liquidate_many_50_per_account"] = tx.gas_used // 50

    feed.set_answer(1_650 * 10**8, sender=deployer)  # below water: a full close with bad debt
    tx = engine.liquidate(traders[2].address, sender=liquidator)
    assert _fractions(engine, tx) == [True] and tx.decode_logs(engine.BadDebt), "a full close with bad debt"
    gas["liquidate_one_position_full"] = tx.gas_used
    return gas


def _fractions(engine: Any, tx: Any) -> list[bool]:
    """Whether each liquidation of a transaction closed its account fully."""
    return [bool(log.full) for log in tx.decode_logs(engine.Liquidation)]


def table(gas: dict[str, int]) -> str:
    rows = [f"{'call':<32}{'gas':>10}  target"]
    for k, v in gas.items():
        t = TARGETS.get(k)
        mark = "" if t is None else f"<= {t:,} {'met' if v <= t else 'MISSED'}"
        rows.append(f"{k:<32}{v:>10,}  {mark}")
    return "\n".join(rows)


@click.command(cls=ConnectedProviderCommand)
@click.option("--out", type=click.Path(dir_okay=False), default=str(ROOT / "reports" / "gas.json"))
def cli(network, out):
    """Measure and print the gas of deposit, trade, close, liquidate and liquidate_many."""
    gas = measure()
    click.echo(table(gas))
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"gas": gas, "targets": TARGETS}, indent=2) + "\n")
    click.echo(f"wrote {path}")
