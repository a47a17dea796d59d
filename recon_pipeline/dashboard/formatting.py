"""How the dashboard shows money, rates and periods (pure functions, used as Jinja filters)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from recon_pipeline.as_of import shift_period

CENT = Decimal("0.01")
TEN_THOUSAND = Decimal(10000)


def _to_decimal(value) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value))


def yuan(value) -> str:
    """Decimal yuan as finance writes it: ¥1,234,567.89 (negative: -¥1,234.00); empty for null."""
    amount = _to_decimal(value)
    if amount is None:
        return "—"
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.2f}"


def wan(value) -> str:
    """Where space is short: 123.46万元 (two decimals of 万元)."""
    amount = _to_decimal(value)
    if amount is None:
        return "—"
    in_wan = (amount / TEN_THOUSAND).quantize(CENT, rounding=ROUND_HALF_UP)
    return f"{in_wan:,.2f}万元"


def percent(value, digits: int = 1) -> str:
    """A ratio (0.953) as 95.3%; empty for null."""
    ratio = _to_decimal(value)
    if ratio is None:
        return "—"
    quantum = Decimal(1).scaleb(-digits)
    return f"{(ratio * 100).quantize(quantum, rounding=ROUND_HALF_UP)}%"


def number(value, digits: int = 0) -> str:
    figure = _to_decimal(value)
    if figure is None:
        return "—"
    quantum = Decimal(1).scaleb(-digits) if digits else Decimal(1)
    return f"{figure.quantize(quantum, rounding=ROUND_HALF_UP):,}"


def timestamp(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def trailing_periods(period: str, count: int) -> list[str]:
    """`count` periods ending with `period`, oldest first."""
    return [shift_period(period, -offset) for offset in range(count - 1, -1, -1)]


def hours_until(moment: datetime, later: datetime) -> Decimal:
    seconds = Decimal((later - moment).total_seconds())
    return (seconds / Decimal(3600)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
