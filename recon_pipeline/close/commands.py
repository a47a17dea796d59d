"""`recon close-period`, `recon reopen-period` and `recon period-statements`: the close's command-line door.

A close or reopen writes the warehouse, so it takes the warehouse the way a run does (one
writer at a time), refreshes the adjustments at the last run's as-of (a reopened period's
adjustments go, it is live again), and republishes at once so BI tools and the dashboard see
it without waiting for the next run.
"""

from __future__ import annotations

import getpass
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import duckdb

from recon_pipeline.close.export import statement_filename, statement_xlsx
from recon_pipeline.close.freeze import CloseOutcome, ReopenOutcome, close_due_periods, close_period, reopen_period
from recon_pipeline.close.live import last_run_as_of, read_summary
from recon_pipeline.close.periods import CloseError, parse_period
from recon_pipeline.close.stage import refresh_adjustments
from recon_pipeline.close.statement import build_statement
from recon_pipeline.publish.publication import PublishError, default_published_path, publish_mart
from recon_pipeline.settings import Settings
from recon_pipeline.warehouse import connect

Clock = Callable[[], datetime]


def wall_clock(settings: Settings) -> Clock:
    """When a person acts (closed_at, reopened_at): local wall-clock time in the settings' zone."""
    return lambda: datetime.now(ZoneInfo(settings.timezone)).replace(tzinfo=None, microsecond=0)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "未署名"


@contextmanager
def _writing(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        raise CloseError(f"找不到仓库文件：{warehouse}（请先运行 recon run）")
    with ExitStack() as stack:
        try:
            conn = stack.enter_context(connect(warehouse))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            raise CloseError(f"仓库正被其他进程写入（recon run 或 Dagster 任务），请稍后再试：{warehouse}") from None
        yield conn


def _republish(warehouse: Path, as_of: datetime | None) -> None:
    try:
        publish_mart(warehouse, as_of=as_of)
    except PublishError as exc:
        raise CloseError(f"封账已写入仓库，但发布只读报表库失败：{exc}") from None


def close_command(warehouse: Path, period: str, settings: Settings, closed_by: str | None = None,
                  now: Clock | None = None, trigger: str = "manual") -> CloseOutcome:
    """Close a period in the warehouse, then republish (nothing is written when it was closed already)."""
    now = now or wall_clock(settings)
    with _writing(warehouse) as conn:
        outcome = close_period(conn, period, settings, closed_by or default_actor(), now, trigger=trigger)
        if outcome.changed:
            refresh_adjustments(conn, outcome.as_of, settings)
    if outcome.changed:
        _republish(warehouse, outcome.as_of)
    return outcome


def close_due_command(warehouse: Path, as_of: datetime, settings: Settings, closed_by: str | None = None,
                      trigger: str = "dagster") -> list[CloseOutcome]:
    """Close every period due at `as_of` and never closed (the scheduled close), then republish."""
    with _writing(warehouse) as conn:
        outcomes = close_due_periods(conn, as_of, settings, closed_by=closed_by, trigger=trigger)
        if outcomes:
            refresh_adjustments(conn, outcomes[-1].as_of, settings)
    if outcomes:
        _republish(warehouse, outcomes[-1].as_of)
    return outcomes


def reopen_command(warehouse: Path, period: str, reason: str, settings: Settings, reopened_by: str | None = None,
                   now: Clock | None = None) -> ReopenOutcome:
    """Reopen a closed period, drop its pending adjustments, republish."""
    now = now or wall_clock(settings)
    with _writing(warehouse) as conn:
        outcome = reopen_period(conn, period, reason, reopened_by or default_actor(), now)
        as_of = last_run_as_of(conn)
        if as_of is not None:
            refresh_adjustments(conn, as_of, settings)
    _republish(warehouse, as_of)
    return outcome


def export_statements(warehouse: Path, period: str, out_dir: Path, settings: Settings,
                      salesperson_id: str | None = None) -> list[Path]:
    """Write the 业绩确认单 of a period as XLSX files (every salesperson of the period, or one).

    Reads the published file, like every reader: a running pipeline is never blocked.
    """
    period = parse_period(period)
    source = default_published_path(warehouse)
    if not source.is_file():
        raise CloseError(f"发布的报表库不存在: {source}（请先运行 recon run）")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with connect(source, read_only=True) as conn:
        people = [salesperson_id] if salesperson_id else sorted(set(read_summary(conn, [period])["salesperson_id"]))
        if not people:
            raise CloseError(f"期间 {period} 没有任何业绩数据")
        written = []
        for person in people:
            statement = build_statement(conn, person, period, settings)
            path = out_dir / statement_filename(statement)
            path.write_bytes(statement_xlsx(statement))
            written.append(path)
    return written
