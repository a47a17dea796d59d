"""How the dashboard shows money, rates and periods (pure functions, used as Jinja filters)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

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


def cutoff_moment(period: str, cutoff_hour: int) -> datetime:
    """The cutoff (封关) of a `YYYY-MM` period: its last calendar day at `cutoff_hour`."""
    year, month = (int(part) for part in period.split("-"))
    first_of_next = date(year + month // 12, month % 12 + 1, 1)
    last_day = first_of_next - timedelta(days=1)
    return datetime(last_day.year, last_day.month, last_day.day, cutoff_hour)


def cutoff_period(moment: datetime, cutoff_hour: int) -> str:
    """The period a moment counts in: its month, or the next one once the month's cutoff passed."""
    period = f"{moment.year:04d}-{moment.month:02d}"
    if moment <= cutoff_moment(period, cutoff_hour):
        return period
    return shift_period(period, 1)


def shift_period(period: str, months: int) -> str:
    year, month = (int(part) for part in period.split("-"))
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def trailing_periods(period: str, count: int) -> list[str]:
    """`count` periods ending with `period`, oldest first."""
    return [shift_period(period, -offset) for offset in range(count - 1, -1, -1)]


def hours_until(moment: datetime, later: datetime) -> Decimal:
    seconds = Decimal((later - moment).total_seconds())
    return (seconds / Decimal(3600)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
