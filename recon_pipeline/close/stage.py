"""The close stage of every run, after the marts: the automatic close (when on) and the adjustments ledger.

`refresh_close(conn, as_of, settings)` is what `recon run` and the Dagster asset
`mart/period_adjustments` call. It reads the live marts and the close tables, lets
`adjustments.plan_adjustments` decide, and writes `mart.period_adjustments` and
`mart.period_close_reconciliation` in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from recon_pipeline.as_of import as_naive_datetime, cutoff_period
from recon_pipeline.close.adjustments import AdjustmentPlan, plan_adjustments
from recon_pipeline.close.freeze import CloseOutcome, close_due_periods
from recon_pipeline.close.live import change_evidence, read_orders
from recon_pipeline.close.periods import CloseSettings, period_states
from recon_pipeline.close.tables import ensure_close_tables, read_frozen_orders, read_ledger
from recon_pipeline.money import format_yuan, sql_money


@dataclass
class CloseStageReport:
    current_period: str
    closed_periods: list[str] = field(default_factory=list)
    auto_closed: list[CloseOutcome] = field(default_factory=list)
    booked: int = 0
    booked_cents: int = 0
    skipped: str | None = None

    def to_text(self) -> str | None:
        """One line for the run summary (None when no period was ever closed)."""
        if not self.closed_periods and not self.auto_closed:
            return None
        parts = [f"已封账期间 {'、'.join(self.closed_periods)}"]
        if self.auto_closed:
            parts.append(f"本次自动封账 {'、'.join(o.period for o in self.auto_closed)}")
        parts.append(self.skipped or f"本期（{self.current_period}）调整 {self.booked} 笔，合计 {format_yuan(self.booked_cents)}")
        return "封账: " + "；".join(parts)


# Entries of the ledger no run may change: booked in an earlier period than the run's, or in a closed one.
IMMUTABLE = "(booked_period < $current OR list_contains($closed_periods, booked_period))"


def changed_orders(conn: duckdb.DuckDBPyConnection, current: str, closed_periods: list[str]) -> list[str]:
    """Orders whose live recognized amount in a closed period differs from the close plus the
    adjustments no run may change (SQL over the whole mart; usually none or a few)."""
    rows = conn.execute(
        f"""
        WITH active AS (
          SELECT period, version FROM close_active
        ), live AS (
          SELECT recognized_period AS period, order_id, salesperson_id, sum(contract_amount) AS amount
          FROM mart.fct_order_reconciliation
          WHERE is_closed AND salesperson_id IS NOT NULL AND recognized_period IN (SELECT period FROM active)
          GROUP BY ALL
        ), frozen AS (
          SELECT o.period, o.order_id, o.salesperson_id, sum(o.recognized_amount) AS amount
          FROM mart.period_close_orders o JOIN active USING (period, version) GROUP BY ALL
        ), kept AS (
          SELECT a.original_period AS period, a.order_id, a.salesperson_id, sum(a.amount) AS amount
          FROM mart.period_adjustments a
          JOIN active ON a.original_period = active.period AND a.original_version = active.version
          WHERE {IMMUTABLE} GROUP BY ALL
        ), keys AS (
          SELECT period, order_id, salesperson_id FROM live UNION SELECT period, order_id, salesperson_id FROM frozen
          UNION SELECT period, order_id, salesperson_id FROM kept
        )
        SELECT DISTINCT k.order_id FROM keys k
        LEFT JOIN live l USING (period, order_id, salesperson_id)
        LEFT JOIN frozen f USING (period, order_id, salesperson_id)
        LEFT JOIN kept p USING (period, order_id, salesperson_id)
        WHERE coalesce(l.amount, 0) - coalesce(f.amount, 0) - coalesce(p.amount, 0) <> 0
        ORDER BY 1
        """,
        {"current": current, "closed_periods": closed_periods},
    ).fetchall()
    return [row[0] for row in rows]


RECONCILIATION_SQL = """
INSERT INTO mart.period_close_reconciliation
WITH active AS (
  SELECT period, version FROM close_active
), closed AS (
  SELECT c.* FROM mart.period_close c JOIN active USING (period, version)
), adjusted AS (
  SELECT original_period AS period, original_version AS version, salesperson_id, sum(amount) AS amount
  FROM mart.period_adjustments GROUP BY ALL
), live AS (
  SELECT a.version, s.* FROM mart.salesperson_period_summary s JOIN active a USING (period)
), people AS (
  SELECT period, version, salesperson_id FROM closed
  UNION SELECT period, version, salesperson_id FROM live
  UNION SELECT period, version, salesperson_id FROM adjusted JOIN active USING (period, version)
)
SELECT p.period, p.version, p.salesperson_id,
       coalesce(c.recognized_amount, 0), coalesce(a.amount, 0), coalesce(l.recognized_amount, 0),
       coalesce(l.recognized_amount, 0) - coalesce(c.recognized_amount, 0) - coalesce(a.amount, 0),
       coalesce(c.signed_amount, 0), coalesce(l.signed_amount, 0),
       coalesce(c.collected_amount, 0), coalesce(l.collected_amount, 0), $as_of
FROM people p
LEFT JOIN closed c USING (period, version, salesperson_id)
LEFT JOIN adjusted a USING (period, version, salesperson_id)
LEFT JOIN live l USING (period, version, salesperson_id)
ORDER BY p.period, p.version, p.salesperson_id
"""


def refresh_adjustments(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings) -> AdjustmentPlan:
    """Recompute the current period's adjustments against every closed period, and the reconciliation.

    The comparison runs in SQL over the whole mart; only the orders it finds changed are read
    into Python (with their close snapshots and the facts behind the change) to be explained.
    """
    as_of = as_naive_datetime(as_of)
    ensure_close_tables(conn)
    states = period_states(conn)
    closed_periods = sorted(p for p, s in states.items() if s.is_closed)
    closes = [(p, s.version) for p, s in states.items() if s.is_closed]
    current = cutoff_period(as_of, settings.cutoff_hour)
    active = [(p, v) for p, v in closes if p < current]
    conn.register("close_active", pd.DataFrame(active, columns=["period", "version"]).astype({"version": "int64"}))
    try:
        changed = changed_orders(conn, current, closed_periods) if current not in closed_periods else []
        ledger = read_ledger(conn)
        plan = plan_adjustments(
            as_of=as_of, cutoff_hour=settings.cutoff_hour, closes=closes, closed_periods=set(closed_periods),
            frozen=read_frozen_orders(conn, "period_close_orders", closes, order_ids=changed),
            excluded=read_frozen_orders(conn, "period_close_excluded_orders", closes, order_ids=changed),
            live=read_orders(conn, order_ids=changed), ledger=ledger[ledger["order_id"].isin(changed)],
            evidence=change_evidence(conn, changed), tolerance_cents=int(settings.amount_tolerance * 100),
        )
        if plan.skipped:
            return plan
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM mart.period_adjustments WHERE NOT {IMMUTABLE}",
                         {"current": current, "closed_periods": closed_periods})
            if not plan.booked.empty:
                conn.register("close_booked", plan.booked)
                conn.execute(
                    f"""
                    INSERT INTO mart.period_adjustments
                    SELECT adjustment_id, original_period, booked_period, order_id, salesperson_id,
                           {sql_money('amount_cents')}, reason, CAST(as_of AS TIMESTAMP),
                           CAST(original_version AS INTEGER), adjustment_type, CAST(contract_no AS VARCHAR),
                           CAST(customer_name AS VARCHAR), CAST(current_recognized_period AS VARCHAR)
                    FROM close_booked ORDER BY booked_period, original_period, order_id, salesperson_id
                    """
                )
                conn.unregister("close_booked")
            conn.execute("DELETE FROM mart.period_close_reconciliation")
            conn.execute(RECONCILIATION_SQL, {"as_of": as_of})
            conn.execute("COMMIT")
        except Exception:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.unregister("close_active")
    return plan


def refresh_close(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings) -> CloseStageReport:
    """The pipeline stage: close what is due (if the settings say so), then book the adjustments."""
    as_of = as_naive_datetime(as_of)
    ensure_close_tables(conn)
    auto_closed = close_due_periods(conn, as_of, settings) if CloseSettings.from_settings(settings).auto_close else []
    plan = refresh_adjustments(conn, as_of, settings)
    states = period_states(conn)
    return CloseStageReport(
        current_period=plan.current_period,
        closed_periods=sorted(p for p, s in states.items() if s.is_closed),
        auto_closed=auto_closed,
        booked=len(plan.booked),
        booked_cents=int(plan.booked["amount_cents"].sum()) if not plan.booked.empty else 0,
        skipped=plan.skipped,
    )
