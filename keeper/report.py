"""The ``scan`` table: the riskiest accounts with their margin figures."""

from __future__ import annotations

import math
from collections.abc import Iterable

from rich.table import Table

from keeper.ranking import AccountRisk
from keeper.units import WAD

__all__ = ["COLUMNS", "format_usd", "format_ratio", "format_distance", "risk_rows", "risk_table"]

COLUMNS = ("account", "equity", "maintenance", "margin ratio", "distance")


def format_usd(wad: int) -> str:
    """A WAD USD amount as ``$1,234.56`` (``-$...`` when negative), truncated to cents."""
    sign = "-" if wad < 0 else ""
    cents = abs(wad) * 100 // WAD
    return f"{sign}${cents // 100:,}.{cents % 100:02d}"


def format_ratio(ratio: float) -> str:
    """A margin ratio (equity / maintenance) with three decimals, or ``inf``."""
    return "inf" if math.isinf(ratio) else f"{ratio:.3f}"


def format_distance(distance: float) -> str:
    """A distance to liquidation as a percentage; ``liquidatable`` when already there."""
    if distance < 0:
        return "liquidatable"
    if math.isinf(distance):
        return "none"
    return f"{distance * 100:.2f}%"


def risk_rows(risks: Iterable[AccountRisk], top: int | None = None) -> list[tuple[str, ...]]:
    """Rows of :data:`COLUMNS` for the first ``top`` risks (all when ``None``), in given order.

    Each row shows the account's riskiest bucket (cross, or an isolated position if closer).
    """
    rows: list[tuple[str, ...]] = []
    for risk in risks:
        if top is not None and len(rows) >= top:
            break
        head = risk.headline
        if head is None:
            continue
        rows.append(
            (
                risk.account,
                format_usd(head.equity),
                format_usd(head.maintenance),
                format_ratio(head.margin_ratio),
                format_distance(head.distance),
            )
        )
    return rows


def risk_table(risks: Iterable[AccountRisk], top: int | None = None, title: str = "") -> Table:
    """A rich table of :func:`risk_rows`."""
    table = Table(title=title or None)
    for i, name in enumerate(COLUMNS):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=True)
    for row in risk_rows(risks, top):
        table.add_row(*row)
    return table
