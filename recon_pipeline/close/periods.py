"""Close calendar and settings: period labels, when a period falls due for closing, the close log's state per period."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from recon_pipeline.as_of import cutoff_moment
from recon_pipeline.close.live import has_table
from recon_pipeline.settings import Settings

PERIOD_PATTERN = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


class CloseError(Exception):
    """A close, reopen or statement request refused; the message is one line for the user."""


def parse_period(text: str) -> str:
    """'2025-03' (or '2025-3') -> '2025-03'; anything else is refused with a one-line reason."""
    match = PERIOD_PATTERN.match(str(text or ""))
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise CloseError(f"期间格式应为 YYYY-MM（例如 2025-03），收到: {text!r}")
    return f"{int(match.group(1)):04d}-{int(match.group(2)):02d}"


def _dates(values: Any) -> frozenset[date]:
    parsed = set()
    for value in values or []:
        parsed.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
    return frozenset(parsed)


@dataclass(frozen=True)
class CloseSettings:
    """The `close:` section of the settings file."""

    auto_close: bool = False
    due_working_days: int = 3
    due_hour: int = 18
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    auto_close_by: str = "系统自动封账"
    commission: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> "CloseSettings":
        section = settings.raw.get("close") or {}
        try:
            return cls(
                auto_close=bool(section.get("auto_close", False)),
                due_working_days=int(section.get("due_working_days", 3)),
                due_hour=int(section.get("due_hour", 18)),
                holidays=_dates(section.get("holidays")),
                workdays=_dates(section.get("workdays")),
                auto_close_by=str(section.get("auto_close_by") or "系统自动封账"),
                commission=section.get("commission") or {},
            )
        except (TypeError, ValueError) as exc:
            raise CloseError(f"设置 close 无效: {exc}") from None

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


def nth_working_day_after(day: date, n: int, close: CloseSettings) -> date:
    """The n-th working day strictly after `day` (n >= 1; 0 means `day` itself)."""
    current, counted = day, 0
    while counted < n:
        current += timedelta(days=1)
        if close.is_working_day(current):
            counted += 1
    return current


def close_due_at(period: str, cutoff_hour: int, close: CloseSettings) -> datetime:
    """When a period falls due for its close: the N-th working day after its cutoff, at the due hour."""
    cutoff = cutoff_moment(period, cutoff_hour)
    day = nth_working_day_after(cutoff.date(), close.due_working_days, close)
    return datetime(day.year, day.month, day.day, close.due_hour)


def period_due_on(day: date, cutoff_hour: int, close: CloseSettings) -> str | None:
    """The period whose close falls due on `day`, if any (what the Dagster close schedule asks)."""
    previous_month = (day.replace(day=1) - timedelta(days=1))
    for candidate in (f"{previous_month:%Y-%m}", f"{day:%Y-%m}"):
        if close_due_at(candidate, cutoff_hour, close).date() == day:
            return candidate
    return None


@dataclass(frozen=True)
class PeriodState:
    """Where a period stands in the close log: closed (with its version) or reopened."""

    period: str
    status: str  # 'closed' / 'reopened'
    version: int
    as_of: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    reopened_at: datetime | None = None
    reopened_by: str | None = None
    reopen_reason: str | None = None

    @property
    def is_closed(self) -> bool:
        return self.status == "closed"


def period_states(conn: duckdb.DuckDBPyConnection) -> dict[str, PeriodState]:
    """Each period's state from `mart.period_close_log` (an empty dict before the first close)."""
    if not has_table(conn, "period_close_log"):
        return {}
    rows = conn.execute(
        """
        SELECT period, action, version, as_of, action_at, action_by, reason
        FROM mart.period_close_log
        ORDER BY period, version, CASE action WHEN 'close' THEN 0 ELSE 1 END
        """
    ).fetchall()
    states: dict[str, PeriodState] = {}
    for period, action, version, as_of, at, by, reason in rows:
        if action == "close":
            states[period] = PeriodState(period, "closed", int(version), as_of, at, by)
        else:
            closed = states[period]
            states[period] = PeriodState(period, "reopened", closed.version, closed.as_of, closed.closed_at,
                                         closed.closed_by, at, by, reason)
    return states
