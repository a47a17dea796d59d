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

from recon_pipeline.as_of import as_naive_datetime
from recon_pipeline.close.adjustments import AdjustmentPlan, plan_adjustments, reconcile
from recon_pipeline.close.freeze import CloseOutcome, close_due_periods
from recon_pipeline.close.live import change_evidence, read_orders, read_summary
from recon_pipeline.close.periods import CloseSettings, period_states
from recon_pipeline.close.tables import ensure_close_tables, read_closed_figures, read_frozen_orders, read_ledger
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


def refresh_adjustments(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings) -> AdjustmentPlan:
    """Recompute the current period's adjustments against every closed period, and the reconciliation."""
    as_of = as_naive_datetime(as_of)
    ensure_close_tables(conn)
    states = period_states(conn)
    closed_periods = {p for p, s in states.items() if s.is_closed}
    closes = [(p, s.version) for p, s in states.items() if s.is_closed]
    frozen = read_frozen_orders(conn, "period_close_orders", closes)
    excluded = read_frozen_orders(conn, "period_close_excluded_orders", closes)
    ledger = read_ledger(conn)
    # Only the orders a close can be about: frozen, listed as not counted, adjusted, or now counted in a closed month.
    named = sorted(set(frozen["order_id"]) | set(excluded["order_id"]) | set(ledger["order_id"]))
    live = read_orders(conn, order_ids=named, recognized_in=sorted(closed_periods))
    touched = sorted(set(named) | set(live["order_id"]))
    plan = plan_adjustments(
        as_of=as_of, cutoff_hour=settings.cutoff_hour, closes=closes, closed_periods=closed_periods,
        frozen=frozen, excluded=excluded, live=live, ledger=ledger, evidence=change_evidence(conn, touched),
        tolerance_cents=int(settings.amount_tolerance * 100),
    )
    if plan.skipped:
        return plan
    reconciliation = reconcile(plan, read_closed_figures(conn), read_summary(conn, [p for p, _ in plan.closes]), as_of)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute(
            "DELETE FROM mart.period_adjustments WHERE adjustment_id NOT IN (SELECT unnest($kept::VARCHAR[]))",
            {"kept": list(plan.kept["adjustment_id"])},
        )
        if not plan.booked.empty:
            conn.register("close_booked", plan.booked)
            conn.execute(
                f"""
                INSERT INTO mart.period_adjustments
                SELECT adjustment_id, original_period, booked_period, order_id, salesperson_id, {sql_money('amount_cents')},
                       reason, CAST(as_of AS TIMESTAMP), CAST(original_version AS INTEGER), adjustment_type,
                       CAST(contract_no AS VARCHAR), CAST(customer_name AS VARCHAR),
                       CAST(current_recognized_period AS VARCHAR)
                FROM close_booked ORDER BY booked_period, original_period, order_id, salesperson_id
                """
            )
            conn.unregister("close_booked")
        conn.execute("DELETE FROM mart.period_close_reconciliation")
        if not reconciliation.empty:
            conn.register("close_reconciliation", reconciliation)
            conn.execute(
                f"""
                INSERT INTO mart.period_close_reconciliation
                SELECT period, CAST(version AS INTEGER), salesperson_id, {sql_money('closed_recognized_cents')},
                       {sql_money('adjustments_cents')}, {sql_money('live_recognized_cents')}, {sql_money('unexplained_cents')},
                       {sql_money('closed_signed_cents')}, {sql_money('live_signed_cents')},
                       {sql_money('closed_collected_cents')}, {sql_money('live_collected_cents')}, CAST(as_of AS TIMESTAMP)
                FROM close_reconciliation ORDER BY period, version, salesperson_id
                """
            )
            conn.unregister("close_reconciliation")
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
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
