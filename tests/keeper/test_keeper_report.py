"""The scan table."""

from __future__ import annotations

import math

from rich.console import Console

from keeper.ranking import AccountModel, Position, rank_accounts
from keeper.report import format_distance, format_ratio, format_usd, risk_rows, risk_table

WAD = 10**18


def test_formats() -> None:
    assert format_usd(1234 * WAD + WAD // 2) == "$1,234.50"
    assert format_usd(-(WAD // 100) - 1) == "-$0.01"
    assert format_ratio(math.inf) == "inf"
    assert format_ratio(1.23456) == "1.235"
    assert format_distance(-0.1) == "liquidatable"
    assert format_distance(0.0523) == "5.23%"
    assert format_distance(math.inf) == "none"


def test_rows__riskiest_first_with_every_column() -> None:
    models = [
        AccountModel(f"0x{i}", c * WAD, (Position(0, WAD, 2000 * WAD, WAD // 20),))
        for i, c in enumerate([500, 50, 150])
    ]
    ranking = rank_accounts(models, {0: 2000 * WAD})
    rows = risk_rows(ranking.ranked, top=2)
    assert rows == [
        ("0x1", "$50.00", "$100.00", "0.500", "liquidatable"),
        ("0x2", "$150.00", "$100.00", "1.500", "2.63%"),
    ]
    console = Console(width=120, record=True)
    console.print(risk_table(ranking.ranked))
    text = console.export_text()
    assert "margin ratio" in text and "0x0" in text
