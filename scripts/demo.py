"""Ballast's main job in one command: a real crash replayed on a local chain, the real keeper
liquidating as it happens.

    .venv/bin/python scripts/demo.py [--window scripts/data/<file>.csv] [--traders 500]

Starts its own anvil, deploys config/local.yaml, funds the pool and the insurance fund, opens
positions for the traders of a fixed seed, starts `ballast-keeper run` as a subprocess and replays
the window's hourly candles through the ETH/USD feed the way Chainlink would have published them
(scripts/_replay.py). Shows the progress live, then prints a report and writes
reports/<window>.json and reports/<window>.png. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import time

STARTED = time.monotonic()  # the wall time reported includes start-up and imports

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CALLED_FROM = Path.cwd()  # paths on the command line are relative to it
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.chdir(ROOT)  # Ape finds the project here

from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.table import Table  # noqa: E402

import _crash  # noqa: E402
import _report  # noqa: E402


def _progress_table(p: _crash.Progress, started: float) -> Table:
    t = Table(title="Replaying", show_header=True, header_style="bold")
    for col in ("ETH/USD", "updates", "block", "liquidated (partial / full)", "liquidatable now", "insurance fund", "elapsed"):
        t.add_column(col, justify="right")
    t.add_row(
        f"{p.price:,.2f}",
        f"{p.update:,} / {p.updates:,}",
        f"{p.block:,}",
        f"{p.liquidated_partial:,} / {p.liquidated_full:,}",
        str(p.liquidatable),
        f"{p.insurance_usd:,.2f}",
        f"{time.monotonic() - started:.0f} s",
    )
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--window",
        type=Path,
        default=_crash.DEFAULT_WINDOW,
        help="CSV of hourly candles, a path or a file name in scripts/data/ (default: Black Thursday, 2020-03-11 to 03-14)",
    )
    ap.add_argument("--traders", type=int, default=500, help="traders in the book (default 500)")
    ap.add_argument("--seed", type=int, default=2020, help="seed of the trader book (default 2020)")
    ap.add_argument("--candles", type=int, default=None, help="replay only the window's first N candles")
    ap.add_argument("--out", type=Path, default=ROOT / "reports", help="directory of the report files (default reports/)")
    args = ap.parse_args(argv)
    args.window, args.out = _given_path(args.window), _given_path(args.out)
    console = Console(width=None if sys.stdout.isatty() else 120)
    started = STARTED
    if args.traders < 1:
        console.print("[red]error:[/] --traders must be at least 1", soft_wrap=True)
        return 2
    try:
        _crash.load_updates(args.window, args.candles)  # a bad window fails before anything starts
    except (ValueError, _crash.DemoError) as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        return 2
    settings = _crash.DemoSettings(window=args.window, traders=args.traders, seed=args.seed, candles=args.candles, workdir=args.out)

    from ape.logging import logger

    logger.set_level("ERROR")  # Ape's line per deployed contract
    console.print(f"[bold]Ballast crash replay[/]: {args.window.name}, {args.traders} traders (seed {args.seed}); starting anvil, deploying, opening positions ...")
    try:
        if console.is_terminal:
            with Live(console=console, refresh_per_second=4, transient=False) as live:
                outcome = _crash.run(settings, lambda p: live.update(_progress_table(p, started)))
        else:
            outcome = _crash.run(settings, lambda p: _print_every(console, p, started))
    except _crash.DemoError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        return 1
    figures = outcome.figures
    stem = args.window.stem
    json_path, png_path = args.out / f"{stem}.json", args.out / f"{stem}.png"
    _report.chart(png_path, figures, outcome.timeline, outcome.liquidations)
    figures["wall_seconds"] = round(time.monotonic() - started, 1)
    goal_list = _report.goals(figures)
    _report.write_json(json_path, _report.document(figures, goal_list, outcome.timeline, outcome.liquidations))

    table = Table(title="Report")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, value in _report.rows(figures):
        table.add_row(name, value)
    console.print(table)
    for g in goal_list:
        mark = "[green]met[/]" if g["met"] else "[red]MISSED[/]"
        console.print(f"{mark}  {g['goal']}: {g['detail']}")
    console.print(f"wrote {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path} and {png_path.name}; keeper log {outcome.keeper_log.name}")
    return 0 if all(g["met"] for g in goal_list) else 1


def _given_path(p: Path) -> Path:
    """A command-line path: relative to where the command was run; a bare file name that is not
    there is looked up in scripts/data/."""
    found = p if p.is_absolute() else CALLED_FROM / p
    if not found.exists() and p.parent == Path(".") and (ROOT / "scripts" / "data" / p.name).is_file():
        return ROOT / "scripts" / "data" / p.name
    return found


def _print_every(console: Console, p: _crash.Progress, started: float, every: int = 100) -> None:
    if p.update % every == 0 or p.update == p.updates:
        console.print(
            f"{time.monotonic() - started:6.1f} s  update {p.update:,}/{p.updates:,}  ETH {p.price:,.2f}  "
            f"liquidated {p.liquidated_partial:,} partial / {p.liquidated_full:,} full  insurance {p.insurance_usd:,.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
