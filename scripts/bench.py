"""`make bench`: the gas of the protocol's main calls (scripts/gas.py) and the keeper's benchmark
(scripts/bench_keeper.py), each on its own anvil; prints both and writes reports/bench.json.

    .venv/bin/python scripts/bench.py [--accounts 10000] [--out reports/bench.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import bench_keeper  # sets up sys.path and the working directory for Ape

from keeper.localchain import Anvil  # noqa: E402

ROOT = bench_keeper.ROOT
GAS_KEYS = ("deposit", "trade_open", "trade_close", "liquidate_one_position", "liquidate_many_50_per_account")
KEEPER_KEYS = (
    "accounts",
    "sweep_seconds",
    "accounts_per_second",
    "naive_accounts_per_second",
    "blocks_to_clear",
    "min_blocks",
    "rpc_calls_per_block",
)


def measure_gas() -> dict[str, int]:
    """scripts/gas.py's measurements, on a fresh anvil."""
    from ape import networks
    from ape.logging import logger

    import gas

    logger.set_level("ERROR")  # Ape's line per transaction
    with Anvil() as anvil, networks.ethereum.local.use_provider("foundry", provider_settings={"host": anvil.url}):
        return gas.measure()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--accounts", type=int, default=10_000, help="accounts of the keeper benchmark (default 10000)")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.json")
    args = ap.parse_args()
    if args.accounts < 2:
        print("error: --accounts must be at least 2", file=sys.stderr)
        return 2

    import gas

    gas_figures = measure_gas()
    print(gas.table(gas_figures), flush=True)
    print()
    keeper_figures = bench_keeper.measure(args.accounts)
    print()
    print(bench_keeper.table(keeper_figures))
    doc = {
        "gas": {k: gas_figures[k] for k in GAS_KEYS},
        "keeper": {k: keeper_figures[k] for k in KEEPER_KEYS},
        "targets": {
            "gas": {k: gas_figures[k] <= t for k, t in gas.TARGETS.items()},
            "keeper": keeper_figures["targets_met"],
        },
        "details": {"gas": gas_figures, "keeper": keeper_figures},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
