"""The run's as-of: every time rule is evaluated at this moment, never at the wall clock."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


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
