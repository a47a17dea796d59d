"""Integer cents <-> yuan: the one place Python turns cents into Decimal or text."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd


def cents_to_decimal(cents: Any) -> Decimal | None:
    """12345 -> Decimal('123.45'); None / NaN / NA -> None."""
    if cents is None or pd.isna(cents):
        return None
    return Decimal(int(cents)).scaleb(-2)


def cents_text(cents: Any) -> str:
    """12345 -> '123.45', -5 -> '-0.05' (plain, for CSV and spreadsheets)."""
    value = cents_to_decimal(cents)
    return "" if value is None else f"{value:.2f}"


def format_yuan(cents: Any) -> str:
    """12345678 -> '¥123,456.78', negative -> '-¥…', missing -> '¥-' (messages)."""
    value = cents_to_decimal(cents)
    if value is None:
        return "¥-"
    return f"{'-' if value < 0 else ''}¥{abs(value):,.2f}"


def sql_cents(column: str) -> str:
    """SQL: a DECIMAL(18,2) column as BIGINT cents (exact)."""
    return f"CAST({column} * 100 AS BIGINT)"


def sql_money(cents_column: str) -> str:
    """SQL: BIGINT cents back to DECIMAL(18,2) (exact, no float on the way)."""
    return f"CAST(CAST({cents_column} AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2))"
