"""The crash demo's report: the goals checked against what was measured, a table, the JSON file and
the chart."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# the keys every reports/<window>.json has, in this order
KEYS = (
    "window",
    "traders",
    "oracle_updates",
    "liquidations_partial",
    "liquidations_full",
    "bad_debt_usd",
    "bad_debt_to_pool_usd",
    "insurance_start_usd",
    "insurance_end_usd",
    "pool_pnl_usd",
    "keeper_rewards_usd",
    "keeper_gas",
    "max_delay_blocks",
    "left_liquidatable_after_update",
    "wall_seconds",
)
CENT = 0.005  # USD figures are WAD sums turned into floats: compare them to the cent


def goals(f: dict[str, Any]) -> list[dict[str, Any]]:
    """The demo's goals, each met or missed, with by how much and why."""
    out = []
    late, unended = f["keeper_late_blocks"], f["spells_not_ended_by_liquidation"]
    why = []
    if late:
        why.append(f"the keeper had not finished its pass over {late} blocks within the wait")
    if unended:
        why.append(f"{unended} liquidatable spells ended without a liquidation (the keeper did not send one)")
    out.append(
        {
            "goal": "no account left liquidatable more than one block after the update that made it so",
            "met": f["max_delay_blocks"] <= 1,
            "detail": f"largest delay {f['max_delay_blocks']} blocks; at most "
            f"{f['left_liquidatable_after_update']} accounts still liquidatable one block after an update"
            + (f" ({'; '.join(why)})" if why else ""),
        }
    )
    out.append(
        {
            "goal": "no bad debt reaching the pool",
            "met": f["bad_debt_to_pool_usd"] < CENT,
            "detail": f"bad debt ${f['bad_debt_usd']:,.2f}: ${f['bad_debt_insurance_paid_usd']:,.2f} paid by the insurance "
            f"fund, ${f['bad_debt_to_pool_usd']:,.2f} written off against the pool"
            + ("" if f["bad_debt_to_pool_usd"] < CENT else " (the insurance fund was empty when it came)"),
        }
    )
    change = f["insurance_end_usd"] - f["insurance_start_usd"]
    out.append(
        {
            "goal": "the insurance fund ends at least where it started",
            "met": change > -CENT,
            "detail": f"{'+' if change >= 0 else '-'}${abs(change):,.2f}: penalties kept ${f['penalty_income_usd']:,.2f} "
            f"(paid penalties less keeper rewards), bad debt paid ${f['bad_debt_insurance_paid_usd']:,.2f}",
        }
    )
    return out


def document(figures: dict[str, Any], goal_list: list[dict[str, Any]], timeline: list[dict[str, Any]], liquidations: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON report: the fixed keys first, then the other figures, the goals and the series."""
    missing = [k for k in KEYS if k not in figures]
    if missing:
        raise KeyError(f"report figures lack {missing}")
    doc = {k: figures[k] for k in KEYS}
    doc["more"] = {k: v for k, v in figures.items() if k not in KEYS}
    doc["goals"] = goal_list
    doc["timeline"] = timeline
    doc["liquidations"] = liquidations
    return doc


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1) + "\n")


def rows(f: dict[str, Any]) -> list[tuple[str, str]]:
    """The report table's rows: (figure, value)."""

    def usd(x: float) -> str:
        return f"{x:,.2f}"

    return [
        ("window", f["window"]),
        ("traders", f"{f['traders']:,}"),
        ("oracle updates replayed", f"{f['oracle_updates']:,}"),
        ("blocks mined in the replay", f"{f['blocks']:,}"),
        ("accounts that became liquidatable", f"{f['accounts_became_liquidatable']:,}"),
        ("liquidations, partial", f"{f['liquidations_partial']:,}"),
        ("liquidations, full", f"{f['liquidations_full']:,}"),
        ("bad debt (USD)", usd(f["bad_debt_usd"])),
        ("  paid by the insurance fund (USD)", usd(f["bad_debt_insurance_paid_usd"])),
        ("  written off against the pool (USD)", usd(f["bad_debt_to_pool_usd"])),
        ("keeper rewards the fund could not pay (USD)", usd(f["insurance_shortfall_usd"])),
        ("insurance fund, start (USD)", usd(f["insurance_start_usd"])),
        ("insurance fund, end (USD)", usd(f["insurance_end_usd"])),
        ("pool PnL, marked to the last price (USD)", usd(f["pool_pnl_usd"])),
        ("  of which realized (USD)", usd(f["pool_realized_pnl_usd"])),
        ("keeper rewards (USD)", usd(f["keeper_rewards_usd"])),
        ("keeper gas", f"{f['keeper_gas']:,} in {f['keeper_transactions']:,} transactions"),
        ("largest delay, liquidatable to liquidated (blocks)", str(f["max_delay_blocks"])),
        ("most accounts liquidatable one block after an update", str(f["left_liquidatable_after_update"])),
        ("wall time (s)", f"{f['wall_seconds']:.1f}"),
    ]


def chart(path: Path, figures: dict[str, Any], timeline: list[dict[str, Any]], liquidations: list[dict[str, Any]]) -> None:
    """Price path with liquidations marked, maintenance fraction, insurance fund; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def when(t: int) -> datetime:
        return datetime.fromtimestamp(t, tz=timezone.utc)

    # every block of the replay belongs to the update that opened it
    block_update: dict[int, dict[str, Any]] = {}
    for e in timeline:
        for b in range(e["block"], e["block"] + e["blocks_after_update"] + 1):
            block_update[b] = e
    times = [when(e["t"]) for e in timeline]
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1, 1.3]})
    ax1.step(times, [e["price"] for e in timeline], where="post", lw=1, color="tab:blue", label="oracle answers")
    for full, style in ((False, dict(marker="o", s=10, color="tab:orange", label="partial liquidation")), (True, dict(marker="x", s=28, color="tab:red", label="full liquidation"))):
        pts = [block_update[lq["block"]] for lq in liquidations if lq["full"] == full and lq["block"] in block_update]
        if pts:
            ax1.scatter([when(e["t"]) for e in pts], [e["price"] for e in pts], zorder=3, **style)
    ax1.set_ylabel("ETH/USD")
    ax1.set_title(
        f"{figures['window']}: {figures['oracle_updates']:,} oracle answers, {figures['traders']} traders, "
        f"{figures['liquidations_partial']:,} partial and {figures['liquidations_full']:,} full liquidations"
    )
    ax1.legend(loc="best", fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.step(times, [100 * e["mmf"] for e in timeline], where="post", lw=1, color="tab:purple")
    ax2.set_ylim(bottom=0, top=max(1.0, 1.5 * max(100 * e["mmf"] for e in timeline)))
    ax2.set_ylabel("maintenance\nfraction (%)")
    ax2.grid(alpha=0.3)
    ax3.step(times, [e["insurance_usd"] for e in timeline], where="post", lw=1, color="tab:green")
    ax3.set_ylabel("insurance\nfund (USD)")
    ax3.set_xlabel("UTC")
    ax3.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
