"""Benchmark of the liquidation keeper on a local anvil with one-second blocks.

    .venv/bin/python scripts/bench_keeper.py [--accounts 10000] [--out reports/bench_keeper.json]

What it does, on its own anvil (``--block-time 1``, anvil's default block gas limit):

1. deploys Ballast with ``scripts/_deploy.py``'s ``deploy`` through Ape, and opens ``--accounts``
   traders' positions with real ``deposit`` and ``trade`` transactions: batched JSON-RPC from
   impersonated addresses, mined as fast as blocks fill (interval mining is paused for the set-up
   and the base fee held at 1 gwei, so the set-up does not wait a second per block);
2. turns one-second blocks back on and starts the keeper (in this process, as ``run`` would);
3. measures a full sweep of every account (paged ``liquidatable_accounts``, one batched request)
   and a naive keeper in the same run (one ``eth_call`` of ``health`` per account, one request
   each, as Compound's reference bot does), and the keeper's RPC calls per block while nothing
   happens;
4. drops the ETH price by 12%, which makes about half of the accounts liquidatable, and measures
   the time and blocks from the block holding the price update to the block holding the last
   liquidation, against the minimum: total liquidation gas over the block gas limit.

Prints the figures and writes them to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.chdir(ROOT)  # Ape finds the project here

from _deploy import deploy_to_node  # noqa: E402

from keeper.abi import EVENTS  # noqa: E402
from keeper.localchain import Anvil, DevChain, TraderSpec, generated_addresses  # noqa: E402
from keeper.rpc import Rpc  # noqa: E402

WAD = 10**18
USDC = 10**6
GWEI = 10**9
ETH_MARKET = 0
# anvil's default dev account 1 (the deployer is account 0); a well-known local key
KEEPER_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
TARGETS = {"sweep_seconds": 1.0, "extra_blocks": 1, "ratio": 20.0}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def trader_specs(n: int, seed: int = 1) -> list[TraderSpec]:
    """Half high-leverage longs (7x to 8x: liquidatable after a 12% fall), 40% shorts (5x to 8x)
    and 10% low-leverage longs (2x to 4x), interleaved so the market's skew stays small."""
    rng = random.Random(seed)
    specs = []
    for i, a in enumerate(generated_addresses(n, seed=seed)):
        collateral = rng.randrange(500, 2000)
        r = i % 10
        if r < 5:
            lev = rng.uniform(7.0, 8.0)
        elif r < 9:
            lev = -rng.uniform(5.0, 8.0)
        else:
            lev = rng.uniform(2.0, 4.0)
        size = int(Decimal(str(round(collateral * abs(lev) / 2000, 6))) * WAD)
        specs.append(TraderSpec(a, collateral * USDC, ((ETH_MARKET, size if lev > 0 else -size),)))
    return specs


def naive_sweep(rpc: Rpc, engine, accounts: list[str]) -> float:
    """Accounts per second of one ``eth_call`` of ``health`` per account, one request each."""
    calls = [engine.view("health", a, block="latest") for a in accounts]
    t = time.perf_counter()
    for method, params in calls:
        rpc.request(method, params)
    return len(accounts) / (time.perf_counter() - t)


def measure(n_accounts: int = 10_000, drop: float = 0.12, steady_blocks: int = 20, log_file: Path | None = None) -> dict[str, Any]:
    """Runs the benchmark on its own anvil and returns every figure (see the module's docstring)."""
    figures: dict[str, Any] = {"accounts": n_accounts}
    with Anvil(block_time=1) as anvil:
        chain = DevChain(Rpc([anvil.url], timeout=300.0, retries=1))
        gas_limit = chain.gas_limit()
        log(f"anvil {anvil.url}: one-second blocks, block gas limit {gas_limit:,}")

        # -- set-up ------------------------------------------------------------------------------
        t0 = time.perf_counter()
        chain.automine(True)
        record, deployer = deploy_to_node(anvil.url)
        chain.automine(False)
        chain.interval_mining(0)
        chain.hold_base_fee = GWEI
        specs = trader_specs(n_accounts)
        skew_usd = sum(s.collateral for s in specs) * 8 // USDC
        chain.seed_pool(record, deployer, skew_usd * USDC)
        t1 = time.perf_counter()
        chain.open_traders(record, specs, funder=deployer)
        setup = time.perf_counter() - t1
        log(f"deployed in {t1 - t0:.1f} s; {len(specs):,} traders opened in {setup:.1f} s (block {chain.block_number()})")
        figures["setup_seconds"] = round(setup, 1)
        chain.hold_base_fee = None
        chain.interval_mining(1)

        deployment_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"ballast-bench-{anvil.port}.json"
        deployment_file.write_text(json.dumps(record))
        state_db = deployment_file.with_suffix(".sqlite")
        for p in (state_db, Path(str(state_db) + "-wal"), Path(str(state_db) + "-shm")):
            p.unlink(missing_ok=True)

        # -- the keeper --------------------------------------------------------------------------
        from keeper.runner import Keeper
        from keeper.settings import load_deployment, load_settings

        os.environ["BALLAST_PRIVATE_KEY"] = KEEPER_KEY
        settings = load_settings(
            {
                "rpc_url": anvil.url,
                "deployment": str(deployment_file),
                "state_db": str(state_db),
                "metrics_port": "0",
                "poll_interval": "0.1",
                "healths_batch": "1000",
                "sweep_page": "1000",
                "max_candidates": "4000",
                "log_level": "WARNING",
            }
        )
        if log_file is not None:
            from keeper.jsonlog import setup_logging

            setup_logging("INFO", json_lines=True, stream=log_file.open("w"))
        keeper = Keeper(settings, load_deployment(deployment_file))
        keeper.connect(need_signer=True)
        t = time.perf_counter()
        head = keeper.start()
        figures["keeper_start_seconds"] = round(time.perf_counter() - t, 2)
        log(f"keeper started in {figures['keeper_start_seconds']} s: {len(keeper.models):,} accounts tracked")

        # -- full sweep vs the naive keeper -------------------------------------------------------
        times = []
        for _ in range(5):
            block = chain.block_number()
            t = time.perf_counter()
            found, checked, errors = keeper.engine.sweep(block)
            times.append(time.perf_counter() - t)
            assert checked == n_accounts and not errors and not found
        sweep = statistics.median(times)
        accounts_list = keeper.engine.account_list("latest")
        naive = naive_sweep(keeper.rpc, keeper.engine, accounts_list)
        figures.update(
            sweep_seconds=round(sweep, 4),
            sweep_seconds_min=round(min(times), 4),
            accounts_per_second=round(n_accounts / sweep),
            naive_accounts_per_second=round(naive),
            ratio=round(n_accounts / sweep / naive, 1),
        )
        log(
            f"full sweep of {n_accounts:,} accounts: {sweep * 1000:.0f} ms (median of 5) = "
            f"{n_accounts / sweep:,.0f} accounts/s; naive keeper {naive:,.0f} accounts/s; "
            f"ratio {n_accounts / sweep / naive:.1f}x"
        )

        # -- steady state ------------------------------------------------------------------------
        thread = threading.Thread(target=keeper.run, daemon=True)
        passes = len(keeper.history)
        thread.start()
        while len(keeper.history) < passes + 2:  # its first pass, and one block more
            time.sleep(0.05)
        b0, c0, r0 = keeper.processed or 0, keeper.rpc.stats.calls, keeper.rpc.stats.requests
        while (keeper.processed or 0) < b0 + steady_blocks:
            time.sleep(0.05)
        b1, c1, r1 = keeper.processed or 0, keeper.rpc.stats.calls, keeper.rpc.stats.requests
        per_block = (c1 - c0) / (b1 - b0)
        figures["rpc_calls_per_block"] = round(per_block, 2)
        figures["rpc_requests_per_block"] = round((r1 - r0) / (b1 - b0), 2)
        log(
            f"steady state over {b1 - b0} blocks: {per_block:.2f} JSON-RPC calls per block in "
            f"{figures['rpc_requests_per_block']} HTTP requests (a full sweep every {settings.full_sweep_blocks} blocks included)"
        )

        # -- the crash ---------------------------------------------------------------------------
        feed = record["markets"][ETH_MARKET]["feed"]
        answer = int(2000 * (1 - drop) * 10**8)
        price_hash = chain.set_feed_answer(feed, answer, deployer)
        t_sent = time.perf_counter()
        price_receipt = chain.mine_until_done([price_hash], manual=False)[0]
        price_block = int(price_receipt["blockNumber"], 16)
        liquidatable, _, _ = keeper.engine.sweep(price_block)
        log(f"price {2000 * (1 - drop):.0f} mined in block {price_block}: {len(liquidatable):,} accounts liquidatable")

        deadline = time.monotonic() + 300
        pool_log = []
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if log_file is not None:
                st = chain.rpc.request("txpool_status")
                pool_log.append((chain.block_number(), int(st["pending"], 16), int(st["queued"], 16)))
            mined = {a for o in keeper.sender.outcomes for a in o.liquidated}
            if len(mined) >= len(liquidatable) and not keeper.sender.pending():
                break
        keeper.request_stop()
        thread.join(timeout=20)
        if pool_log:
            figures["pool_log"] = pool_log
        wall = time.perf_counter() - t_sent

        outcomes = [o for o in keeper.sender.outcomes if o.accounts]
        liq_blocks = [o.block for o in outcomes if o.liquidated]
        last_block = max(liq_blocks)
        left, _, _ = keeper.engine.sweep("latest")
        liquidation_gas = sum(o.gas_used for o in outcomes)
        ts = lambda n: int(keeper.rpc.request("eth_getBlockByNumber", [hex(n), False])["timestamp"], 16)  # noqa: E731
        per_block_counts: dict[int, int] = {}
        for o in outcomes:
            per_block_counts[o.block] = per_block_counts.get(o.block, 0) + len(o.liquidated)
        liquidated = sum(len(o.liquidated) for o in outcomes)
        events = keeper.rpc.request(
            "eth_getLogs",
            [{"address": keeper.engine.address, "fromBlock": hex(price_block), "toBlock": "latest",
              "topics": [EVENTS["Liquidation"].topic]}],
        )
        min_exact = liquidation_gas / gas_limit
        figures.update(
            liquidatable=len(liquidatable),
            liquidated=liquidated,
            liquidation_events=len(events),
            left_liquidatable=len(left),
            transactions=len(outcomes),
            failed_transactions=sum(o.status != "mined" for o in outcomes),
            lost_races=int(keeper.metrics.value("lost_races")),
            price_block=price_block,
            last_liquidation_block=last_block,
            blocks_to_clear=last_block - price_block,
            seconds_to_clear=ts(last_block) - ts(price_block),
            wall_seconds_to_clear=round(wall, 2),
            liquidation_gas=liquidation_gas,
            block_gas_limit=gas_limit,
            min_blocks_exact=round(min_exact, 3),
            min_blocks=math.ceil(min_exact),
            liquidations_per_block={str(k): v for k, v in sorted(per_block_counts.items())},
            gas_per_account=round(liquidation_gas / max(1, liquidated)),
            transactions_by_block=[
                {"nonce": o.nonce, "block": o.block, "sent_block": o.sent_block, "accounts": len(o.accounts),
                 "liquidated": len(o.liquidated), "gas_used": o.gas_used, "gas_limit": o.gas_limit}
                for o in sorted(outcomes, key=lambda o: (o.block or 0, o.nonce))
            ],
            passes_after_the_drop=[
                {"block": r.block, "seconds": round(r.seconds, 3), "liquidatable": len(r.liquidatable),
                 "sent": r.sent, "timings": r.timings}
                for r in keeper.history
                if r.block >= price_block
            ][:20],
        )
        log(
            f"{liquidated:,} liquidated in {len(outcomes)} transactions ({figures['failed_transactions']} failed), "
            f"{len(left)} left liquidatable; last liquidation in block {last_block}: "
            f"{last_block - price_block} blocks / {figures['seconds_to_clear']} s after the price block "
            f"(wall {wall:.1f} s from sending it)"
        )
        log(
            f"liquidation gas {liquidation_gas:,} = {min_exact:.2f} blocks of {gas_limit:,}: minimum "
            f"{math.ceil(min_exact)} blocks; per block {figures['liquidations_per_block']}"
        )
        keeper.close()

    figures["targets_met"] = {
        "sweep_under_1s": figures["sweep_seconds"] < TARGETS["sweep_seconds"],
        "within_min_blocks_plus_1": figures["blocks_to_clear"] <= figures["min_blocks"] + TARGETS["extra_blocks"],
        "at_least_20x_naive": figures["ratio"] >= TARGETS["ratio"],
        "all_liquidated_once": figures["liquidation_events"] == figures["liquidatable"] == figures["liquidated"]
        and figures["left_liquidatable"] == 0,
    }
    return figures


def table(figures: dict[str, Any]) -> str:
    """The figures and their targets as a text table."""
    met = figures["targets_met"]
    out = [f"{'figure':<34}{'value':>16}  target"]
    rows = [
        ("accounts", f"{figures['accounts']:,}", ""),
        ("block gas limit", f"{figures['block_gas_limit']:,}", ""),
        ("full sweep, seconds", f"{figures['sweep_seconds']:.4f}", "< 1 s " + _ok(met["sweep_under_1s"])),
        ("full sweep, accounts/s", f"{figures['accounts_per_second']:,}", ""),
        ("naive keeper, accounts/s", f"{figures['naive_accounts_per_second']:,}", ""),
        ("ratio", f"{figures['ratio']}x", ">= 20x " + _ok(met["at_least_20x_naive"])),
        ("liquidatable after the drop", f"{figures['liquidatable']:,}", ""),
        ("blocks to clear", f"{figures['blocks_to_clear']}", f"<= {figures['min_blocks']} + 1 " + _ok(met["within_min_blocks_plus_1"])),
        ("seconds to clear (block time)", f"{figures['seconds_to_clear']}", ""),
        ("minimum blocks (gas / limit)", f"{figures['min_blocks_exact']}", ""),
        ("RPC calls per block, steady", f"{figures['rpc_calls_per_block']}", ""),
        ("HTTP requests per block, steady", f"{figures['rpc_requests_per_block']}", ""),
        ("set-up of the accounts, seconds", f"{figures['setup_seconds']}", ""),
    ]
    for name, value, target in rows:
        out.append(f"{name:<34}{value:>16}  {target}")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10_000, help="traders with a position (default 10000)")
    ap.add_argument("--drop", type=float, default=0.12, help="relative ETH price fall (default 0.12)")
    ap.add_argument("--steady-blocks", type=int, default=20, help="blocks measured for RPC calls per block")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_keeper.json")
    ap.add_argument("--log-file", type=Path, default=None, help="write the keeper's JSON logs (INFO) here")
    args = ap.parse_args()
    figures = measure(args.accounts, args.drop, args.steady_blocks, args.log_file)
    print()
    print(table(figures))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _ok(flag: bool) -> str:
    return "met" if flag else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
