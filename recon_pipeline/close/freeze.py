"""Close (封账) and reopen a period: freeze the salesperson figures and the counted orders as of the last run.

A period may be closed once the last run's as-of lies after its cutoff. The close writes one
new version of `mart.period_close` (per salesperson), `mart.period_close_orders` (per counted
order) and `mart.period_close_excluded_orders` (the signed orders that did not count, with
the reason), and a `close` entry in `mart.period_close_log`; closing a closed period changes
nothing. Reopening is explicit (who, when, why); the next close writes a new version and the
old one stays. `now` is injected: the wall clock for a person, the run's as-of for an
automatic close, a fixed clock in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import duckdb
import pandas as pd

from recon_pipeline.as_of import cutoff_moment, cutoff_period
from recon_pipeline.close.live import has_table, last_run_as_of, read_orders, read_summary
from recon_pipeline.close.periods import CloseError, CloseSettings, PeriodState, close_due_at, parse_period, period_states
from recon_pipeline.close.reasons import not_counted_reason
from recon_pipeline.close.tables import ensure_close_tables, snapshot_insert
from recon_pipeline.money import format_yuan, sql_money
from recon_pipeline.run_state import forget_fingerprints
from recon_pipeline.settings import Settings

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class CloseOutcome:
    period: str
    version: int
    changed: bool
    as_of: datetime
    closed_at: datetime
    closed_by: str
    salespeople: int = 0
    orders: int = 0
    recognized_cents: int = 0

    def message(self) -> str:
        if not self.changed:
            return (f"期间 {self.period} 已于 {self.closed_at:%Y-%m-%d %H:%M} 由 {self.closed_by} 封账（版本 {self.version}），"
                    "未作任何更改")
        return (f"期间 {self.period} 已封账（版本 {self.version}，评估时点 {self.as_of:%Y-%m-%d %H:%M}）："
                f"{self.salespeople} 位销售，{self.orders} 笔订单计入业绩，确认业绩合计 {format_yuan(self.recognized_cents)}")


@dataclass(frozen=True)
class ReopenOutcome:
    period: str
    version: int
    reopened_at: datetime
    reopened_by: str
    reason: str

    def message(self) -> str:
        return (f"期间 {self.period} 已重开（原版本 {self.version} 保留），原因：{self.reason}；"
                "重新封账将生成新版本")


def _refuse_unless_cutoff_passed(period: str, as_of: datetime | None, cutoff_hour: int) -> None:
    if as_of is None:
        raise CloseError("仓库中还没有对账结果，请先运行 recon run")
    cutoff = cutoff_moment(period, cutoff_hour)
    if as_of > cutoff:
        return
    when = f"封关时点 {cutoff:%Y-%m-%d %H:%M}，最近一次运行的评估时点 {as_of:%Y-%m-%d %H:%M}"
    hint = "；请在封关后以晚于封关时点的 --as-of 运行 recon run，再封账"
    if cutoff_period(as_of, cutoff_hour) == period:
        raise CloseError(f"期间 {period} 是当前未结束的期间（{when}），不能封账{hint}")
    raise CloseError(f"期间 {period} 尚未过封关时点（{when}），不能封账{hint}")


def counted_orders(orders: pd.DataFrame, period: str) -> pd.DataFrame:
    """The orders a period's recognized amount counts: closed, recognized in it, with a salesperson."""
    counted = orders[orders["is_closed"].astype(bool) & (orders["recognized_period"] == period)
                     & orders["salesperson_id"].notna()]
    return counted.reset_index(drop=True)


def uncounted_orders(orders: pd.DataFrame, period: str, cutoff_hour: int, tolerance_cents: int) -> pd.DataFrame:
    """A salesperson's signed orders (signed in or before the period, not cancelled) that did not count
    in it or before, with the reason in words."""
    signed = orders[orders["salesperson_id"].notna() & orders["sales_leg_closed_at"].notna()]
    signed_period = pd.to_datetime(signed["sales_leg_closed_at"]).dt.strftime("%Y-%m")
    counted_by_then = signed["is_closed"].astype(bool) & (signed["recognized_period"].fillna("9999-99") <= period)
    rows = signed[(signed_period <= period) & ~counted_by_then & (signed["status"] != "cancelled")].copy()
    rows["reason"] = [not_counted_reason(row, period, cutoff_hour, tolerance_cents) for row in rows.to_dict("records")]
    return rows.reset_index(drop=True)


def close_period(
    conn: duckdb.DuckDBPyConnection,
    period: str,
    settings: Settings,
    closed_by: str,
    now: Clock,
    trigger: str = "manual",
) -> CloseOutcome:
    """Freeze `period` as of the last run (one transaction); refuse with a CloseError, or change nothing if closed."""
    period = parse_period(period)
    ensure_close_tables(conn)
    as_of = last_run_as_of(conn)
    _refuse_unless_cutoff_passed(period, as_of, settings.cutoff_hour)
    state = period_states(conn).get(period)
    if state is not None and state.is_closed:
        return CloseOutcome(period, state.version, False, state.as_of, state.closed_at, state.closed_by)
    forget_fingerprints(conn, "run")  # the next run recomputes: this is no longer the last run's warehouse
    summary = read_summary(conn, [period])
    if summary.empty:
        raise CloseError(f"期间 {period} 没有任何业绩数据（销售业绩汇总中没有该期间），不能封账")
    tolerance = int(settings.amount_tolerance * 100)
    orders = read_orders(conn)
    counted = counted_orders(orders, period)
    uncounted = uncounted_orders(orders, period, settings.cutoff_hour, tolerance)
    by_person = counted.groupby("salesperson_id")["contract_cents"].sum()
    for row in summary.itertuples():
        if int(by_person.get(row.salesperson_id, 0)) != int(row.recognized_cents):
            raise CloseError(f"期间 {period} 销售 {row.salesperson_id} 的确认业绩与订单明细不一致，"
                             "请重新运行 recon run 后再封账")
    version = (state.version + 1) if state else 1
    closed_by = (closed_by or "").strip() or "未署名"
    closed_at = now().replace(microsecond=0)
    names = orders.dropna(subset=["salesperson_id"]).drop_duplicates("salesperson_id").set_index("salesperson_id")["salesperson_name"]
    summary = summary.assign(salesperson_name=summary["salesperson_id"].map(names),
                             counted_orders=summary["salesperson_id"].map(counted.groupby("salesperson_id").size()).fillna(0).astype(int))
    snapshot, snapshot_values = snapshot_insert()
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.register("close_summary", summary)
        conn.register("close_counted", counted)
        conn.register("close_uncounted", uncounted)
        conn.execute(
            f"""
            INSERT INTO mart.period_close
            SELECT $period, $version, salesperson_id, {sql_money('signed_cents')}, {sql_money('recognized_cents')},
                   {sql_money('collected_cents')}, $as_of, $closed_at, $closed_by, salesperson_name, counted_orders
            FROM close_summary ORDER BY salesperson_id
            """,
            {"period": period, "version": version, "as_of": as_of, "closed_at": closed_at, "closed_by": closed_by},
        )
        conn.execute(
            f"""
            INSERT INTO mart.period_close_orders (period, version, order_id, salesperson_id, recognized_amount, {snapshot})
            SELECT $period, $version, order_id, salesperson_id, {sql_money('contract_cents')}, {snapshot_values}
            FROM close_counted ORDER BY order_id
            """,
            {"period": period, "version": version},
        )
        conn.execute(
            f"""
            INSERT INTO mart.period_close_excluded_orders (period, version, order_id, salesperson_id, reason, {snapshot})
            SELECT $period, $version, order_id, salesperson_id, reason, {snapshot_values}
            FROM close_uncounted ORDER BY order_id
            """,
            {"period": period, "version": version},
        )
        conn.execute(
            "INSERT INTO mart.period_close_log VALUES ($period, $version, 'close', $at, $by, NULL, $as_of, $trigger)",
            {"period": period, "version": version, "at": closed_at, "by": closed_by, "as_of": as_of, "trigger": trigger},
        )
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    finally:
        for name in ("close_summary", "close_counted", "close_uncounted"):
            conn.unregister(name)
    return CloseOutcome(period, version, True, as_of, closed_at, closed_by, salespeople=len(summary),
                        orders=len(counted), recognized_cents=int(counted["contract_cents"].sum()))


def reopen_period(
    conn: duckdb.DuckDBPyConnection,
    period: str,
    reason: str,
    reopened_by: str,
    now: Clock,
) -> ReopenOutcome:
    """Reopen a closed period (recorded with who, when and why); its frozen version stays."""
    period = parse_period(period)
    reason = (reason or "").strip()
    if not reason:
        raise CloseError("重开期间必须说明原因（--reason）")
    ensure_close_tables(conn)
    state = period_states(conn).get(period)
    if state is None:
        raise CloseError(f"期间 {period} 尚未封账，无需重开")
    if not state.is_closed:
        raise CloseError(f"期间 {period} 已于 {state.reopened_at:%Y-%m-%d %H:%M} 由 {state.reopened_by} 重开，尚未重新封账")
    reopened_by = (reopened_by or "").strip() or "未署名"
    forget_fingerprints(conn, "run")  # the next run recomputes: this is no longer the last run's warehouse
    at = now().replace(microsecond=0)
    as_of = last_run_as_of(conn) or state.as_of
    conn.execute(
        "INSERT INTO mart.period_close_log VALUES ($period, $version, 'reopen', $at, $by, $reason, $as_of, 'manual')",
        {"period": period, "version": state.version, "at": at, "by": reopened_by, "reason": reason, "as_of": as_of},
    )
    return ReopenOutcome(period, state.version, at, reopened_by, reason)


def periods_due(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings) -> list[str]:
    """Periods with figures whose close is due at `as_of` and that were never closed (oldest first)."""
    close = CloseSettings.from_settings(settings)
    states: dict[str, PeriodState] = period_states(conn)
    if not has_table(conn, "salesperson_period_summary"):
        return []
    periods = [row[0] for row in conn.execute(
        "SELECT DISTINCT period FROM mart.salesperson_period_summary ORDER BY period").fetchall()]
    return [p for p in periods if p not in states and close_due_at(p, settings.cutoff_hour, close) <= as_of]


def close_due_periods(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings,
                      closed_by: str | None = None, trigger: str = "auto") -> list[CloseOutcome]:
    """The automatic close: every due period never closed before, stamped with the run's as-of."""
    by = closed_by or CloseSettings.from_settings(settings).auto_close_by
    return [close_period(conn, period, settings, by, now=lambda: as_of, trigger=trigger)
            for period in periods_due(conn, as_of, settings)]
