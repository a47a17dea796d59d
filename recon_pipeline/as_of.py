"""The run's as-of and the cutoff calendar: every time rule is evaluated at this moment, never at the wall clock."""

from __future__ import annotations

import calendar
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd


class AsOfError(ValueError):
    pass


def parse_as_of(text: str, timezone: str) -> datetime:
    """'2025-05-06', '2025-05-06T09:00', '2025-05-06 09:00:00+08:00', '...Z' -> naive local time.

    A value without an offset is already local time in `timezone`; one with an offset is
    converted to it. A bare date means the start of that day.
    """
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AsOfError(f"--as-of 无法识别: {text!r}（示例: 2025-05-06T09:00:00）") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def as_of_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def as_of_date(moment: datetime) -> date:
    return moment.date()


def as_naive_datetime(as_of: datetime | str | pd.Timestamp) -> datetime:
    """The run's as-of as a naive local datetime (strings like '2025-03-31 12:00:00')."""
    value = pd.Timestamp(as_of)
    if value.tzinfo is not None:
        raise ValueError("as_of must be naive local time (convert it before calling)")
    return value.to_pydatetime()


def hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def duration_text(seconds: float) -> str:
    """A duration as people say it: 106 天, 2 天 6 小时, 5 小时 20 分钟, 12 分钟 (never thousands of hours)."""
    minutes = int(max(seconds, 0) // 60)
    if minutes < 60:
        return f"{minutes} 分钟"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} 小时" + (f" {minutes} 分钟" if minutes else "")
    days, hours = divmod(hours, 24)
    if days >= 10 or not hours:
        return f"{days} 天"
    return f"{days} 天 {hours} 小时"


# --- the cutoff calendar (封关): a period `YYYY-MM` ends on its last day at the cutoff hour ---


def cutoff_of_month(year: int, month: int, cutoff_hour: int) -> datetime:
    """The cutoff (封关) of a month: its last calendar day at `cutoff_hour` local time."""
    last_day = calendar.monthrange(year, month)[1]
    return datetime(year, month, last_day, cutoff_hour)


def cutoff_moment(period: str, cutoff_hour: int) -> datetime:
    """The cutoff of a `YYYY-MM` period."""
    year, month = (int(part) for part in period.split("-"))
    return cutoff_of_month(year, month, cutoff_hour)


def shift_period(period: str, months: int) -> str:
    year, month = (int(part) for part in period.split("-"))
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def cutoff_period(moment: datetime, cutoff_hour: int) -> str:
    """The period a moment counts in: its month, or the next one once the month's cutoff passed."""
    period = f"{moment.year:04d}-{moment.month:02d}"
    if moment <= cutoff_moment(period, cutoff_hour):
        return period
    return shift_period(period, 1)


def next_cutoff(as_of: datetime, cutoff_hour: int) -> datetime:
    """The first cutoff at or after as_of (work finished exactly at the cutoff still counts)."""
    return cutoff_moment(cutoff_period(as_of, cutoff_hour), cutoff_hour)


def last_closed_periods(as_of: datetime, cutoff_hour: int, count: int = 2) -> list[str]:
    """The `count` most recent periods (YYYY-MM) whose cutoff has passed, newest first."""
    period = f"{as_of.year:04d}-{as_of.month:02d}"
    if as_of < cutoff_moment(period, cutoff_hour):
        period = shift_period(period, -1)
    return [shift_period(period, -back) for back in range(count)]
