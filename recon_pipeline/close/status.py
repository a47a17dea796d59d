"""Where each period stands (the health board's 封账状态): closed, reopened, due, or still running, with its adjustments."""

from __future__ import annotations

from datetime import datetime

import duckdb

from recon_pipeline.as_of import cutoff_moment, cutoff_period
from recon_pipeline.close.live import has_table
from recon_pipeline.close.periods import CloseSettings, close_due_at, period_states
from recon_pipeline.settings import Settings

STATUS_LABELS = {
    "closed": "已封账",
    "reopened": "已重开",
    "due": "到期未封账",
    "waiting": "已过封关，未到封账日",
    "running": "本期（未结束）",
}


def period_board(conn: duckdb.DuckDBPyConnection, as_of: datetime | None, settings: Settings,
                 limit: int = 12) -> list[dict]:
    """One row per period (newest first, at most `limit`): its close status, who closed it, its adjustments."""
    if as_of is None:
        return []
    close = CloseSettings.from_settings(settings)
    states = period_states(conn)
    periods = set(states)
    if has_table(conn, "salesperson_period_summary"):
        periods |= {row[0] for row in conn.execute("SELECT DISTINCT period FROM mart.salesperson_period_summary").fetchall()}
    current = cutoff_period(as_of, settings.cutoff_hour)
    adjusted: dict[str, tuple[int, int]] = {}
    if has_table(conn, "period_adjustments"):
        for period, count, cents in conn.execute(
            "SELECT original_period, count(*), CAST(sum(amount) * 100 AS BIGINT) FROM mart.period_adjustments GROUP BY 1"
        ).fetchall():
            adjusted[period] = (int(count), int(cents))
    rows = []
    for period in sorted((p for p in periods if p <= current), reverse=True)[:limit]:
        state = states.get(period)
        due_at = close_due_at(period, settings.cutoff_hour, close)
        if state is not None:
            status = state.status
        elif period == current or as_of <= cutoff_moment(period, settings.cutoff_hour):
            status = "running"
        else:
            status = "due" if as_of >= due_at else "waiting"
        count, cents = adjusted.get(period, (0, 0))
        rows.append({
            "period": period, "status": status, "status_label": STATUS_LABELS[status],
            "version": state.version if state else None,
            "closed_by": state.closed_by if state else None, "closed_at": state.closed_at if state else None,
            "frozen_as_of": state.as_of if state else None,
            "reopened_by": state.reopened_by if state else None, "reopened_at": state.reopened_at if state else None,
            "reopen_reason": state.reopen_reason if state else None,
            "due_at": due_at, "adjustments": count, "adjustments_cents": cents,
        })
    return rows
