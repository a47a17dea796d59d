"""The 业绩确认单: one salesperson's statement for one period, built from the close tables or the live mart.

A closed period shows what the close froze (its current version); an open or reopened one
shows the live figures, marked as provisional. The statement lists what counted (order by
order), what did not (with the missing leg in words), the adjustments booked into this period
(调整, carried in from earlier closed periods) and, for information, the adjustments later
booked against this period. With commission rates in the settings it also computes the
commission and the clawbacks. Works on the working warehouse and on the published file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pandas as pd

from recon_pipeline.close.commission import CommissionPlan, plan_for
from recon_pipeline.close.freeze import counted_orders, uncounted_orders
from recon_pipeline.close.live import has_table, last_run_as_of, read_orders, read_summary
from recon_pipeline.close.periods import CloseError, CloseSettings, PeriodState, parse_period, period_states
from recon_pipeline.close.reasons import ADJUSTMENT_TYPES
from recon_pipeline.close.tables import read_closed_figures, read_frozen_orders, read_ledger
from recon_pipeline.settings import Settings


@dataclass(frozen=True)
class StatementOrder:
    order_id: str
    contract_no: str | None
    customer_name: str | None
    amount_cents: int
    moment: datetime | None  # counted: when its last leg closed; not counted: when it was signed
    note: str


@dataclass(frozen=True)
class StatementAdjustment:
    adjustment_id: str
    original_period: str
    booked_period: str
    order_id: str
    contract_no: str | None
    customer_name: str | None
    amount_cents: int
    kind: str
    reason: str
    commission_cents: int | None = None

    @property
    def kind_label(self) -> str:
        return ADJUSTMENT_TYPES.get(self.kind, self.kind)


@dataclass(frozen=True)
class Commission:
    plan: str
    on_counted_cents: int
    adjustments_cents: int  # sum of the adjustments' effects (clawbacks negative)
    clawback_cents: int     # the negative part of it

    @property
    def total_cents(self) -> int:
        return self.on_counted_cents + self.adjustments_cents


@dataclass
class Statement:
    salesperson_id: str
    salesperson_name: str | None
    period: str
    status: str  # 'closed' / 'open' / 'reopened'
    as_of: datetime | None
    state: PeriodState | None
    signed_cents: int
    recognized_cents: int
    collected_cents: int
    counted: list[StatementOrder] = field(default_factory=list)
    not_counted: list[StatementOrder] = field(default_factory=list)
    adjustments: list[StatementAdjustment] = field(default_factory=list)
    later_adjustments: list[StatementAdjustment] = field(default_factory=list)
    commission: Commission | None = None

    @property
    def adjustments_cents(self) -> int:
        return sum(a.amount_cents for a in self.adjustments)

    @property
    def total_cents(self) -> int:
        """This period's recognized amount plus the adjustments carried in: what the period pays on."""
        return self.recognized_cents + self.adjustments_cents

    @property
    def title(self) -> str:
        return f"业绩确认单 {self.period} · {self.salesperson_name or self.salesperson_id}（{self.salesperson_id}）"

    @property
    def status_text(self) -> str:
        state = self.state
        if self.status == "closed" and state is not None:
            return (f"已封账（版本 {state.version}）：{state.closed_by} 于 {state.closed_at:%Y-%m-%d %H:%M} 封账，"
                    f"数据截至 {state.as_of:%Y-%m-%d %H:%M}；之后的变化记为调整")
        live = f"截至 {self.as_of:%Y-%m-%d %H:%M} 的实时数据" if self.as_of else "实时数据"
        if self.status == "reopened" and state is not None:
            return (f"已重开：{state.reopened_by} 于 {state.reopened_at:%Y-%m-%d %H:%M} 重开（{state.reopen_reason}），"
                    f"以下为{live}，重新封账前仍可能变化")
        return f"未封账：以下为{live}，封账前仍可能变化"


def _orders(frame: pd.DataFrame, amount: str, moment: str, note) -> list[StatementOrder]:
    return [
        StatementOrder(
            order_id=str(row["order_id"]), contract_no=_text(row.get("contract_no")),
            customer_name=_text(row.get("customer_name")), amount_cents=int(row[amount]),
            moment=None if pd.isna(row.get(moment)) else pd.Timestamp(row[moment]).to_pydatetime(),
            note=note(row),
        )
        for row in frame.sort_values(["order_id"]).to_dict("records")
    ]


def _text(value) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def _adjustments(frame: pd.DataFrame) -> list[StatementAdjustment]:
    return [
        StatementAdjustment(
            adjustment_id=row["adjustment_id"], original_period=row["original_period"],
            booked_period=row["booked_period"], order_id=row["order_id"], contract_no=_text(row["contract_no"]),
            customer_name=_text(row["customer_name"]), amount_cents=int(row["amount_cents"]),
            kind=row["adjustment_type"], reason=row["reason"],
        )
        for row in frame.to_dict("records")
    ]


def _with_commission(adjustments: list[StatementAdjustment], ledger: pd.DataFrame, closed: pd.DataFrame,
                     plan: CommissionPlan) -> list[StatementAdjustment]:
    """Each adjustment's effect on its original period's commission, in booking order."""
    result = []
    for adjustment in adjustments:
        row = ledger[ledger["adjustment_id"] == adjustment.adjustment_id].iloc[0]
        same = ledger[(ledger["original_period"] == row["original_period"])
                      & (ledger["original_version"] == row["original_version"])
                      & (ledger["salesperson_id"] == row["salesperson_id"])]
        earlier = same[(same["booked_period"] < row["booked_period"])
                       | ((same["booked_period"] == row["booked_period"]) & (same["adjustment_id"] < row["adjustment_id"]))]
        base = closed[(closed["period"] == row["original_period"]) & (closed["version"] == row["original_version"])
                      & (closed["salesperson_id"] == row["salesperson_id"])]["recognized_cents"].sum()
        effect = plan.effect_cents(int(base) + int(earlier["amount_cents"].sum()), adjustment.amount_cents)
        result.append(StatementAdjustment(**{**adjustment.__dict__, "commission_cents": effect}))
    return result


def build_statement(conn: duckdb.DuckDBPyConnection, salesperson_id: str, period: str, settings: Settings) -> Statement:
    """The 业绩确认单 of `salesperson_id` for `period` (raises CloseError when there is nothing to show)."""
    period = parse_period(period)
    salesperson_id = str(salesperson_id).strip()
    tolerance = int(settings.amount_tolerance * 100)
    state = period_states(conn).get(period)
    closed = read_closed_figures(conn) if has_table(conn, "period_close") else pd.DataFrame(
        columns=["period", "version", "salesperson_id", "recognized_cents"])
    ledger = read_ledger(conn) if has_table(conn, "period_adjustments") else pd.DataFrame(
        columns=["adjustment_id", "original_period", "booked_period", "salesperson_id", "amount_cents",
                 "original_version", "adjustment_type", "reason", "order_id", "contract_no", "customer_name"])
    mine = read_orders(conn, salesperson_id=salesperson_id)
    names = mine["salesperson_name"].dropna()
    name = str(names.iloc[0]) if len(names) else None

    if state is not None and state.is_closed:
        figures = closed[(closed["period"] == period) & (closed["version"] == state.version)
                         & (closed["salesperson_id"] == salesperson_id)]
        closes = [(period, state.version)]
        counted = read_frozen_orders(conn, "period_close_orders", closes)
        counted = counted[counted["salesperson_id"] == salesperson_id]
        uncounted = read_frozen_orders(conn, "period_close_excluded_orders", closes)
        uncounted = uncounted[uncounted["salesperson_id"] == salesperson_id]
        if len(figures):
            name = name or _text(figures["salesperson_name"].iloc[0])
        status, as_of = "closed", state.as_of
    else:
        figures = read_summary(conn, [period])
        figures = figures[figures["salesperson_id"] == salesperson_id]
        counted = counted_orders(mine, period).rename(columns={"contract_cents": "recognized_cents"})
        uncounted = uncounted_orders(mine, period, settings.cutoff_hour, tolerance)
        status, as_of = ("reopened" if state is not None else "open"), last_run_as_of(conn)
    mine_ledger = ledger[ledger["salesperson_id"] == salesperson_id]
    carried = mine_ledger[mine_ledger["booked_period"] == period].sort_values(["original_period", "order_id"])
    later = mine_ledger[(mine_ledger["original_period"] == period) & (mine_ledger["booked_period"] != period)]
    if figures.empty and counted.empty and uncounted.empty and carried.empty:
        raise CloseError(f"没有销售 {salesperson_id} 在 {period} 的业绩数据")

    def figure(column: str) -> int:
        return int(figures[column].sum()) if len(figures) else 0

    statement = Statement(
        salesperson_id=salesperson_id, salesperson_name=name, period=period, status=status, as_of=as_of, state=state,
        signed_cents=figure("signed_cents"), recognized_cents=figure("recognized_cents"),
        collected_cents=figure("collected_cents"),
        counted=_orders(counted, "recognized_cents", "order_closed_at", lambda row: "三联单已闭环"),
        not_counted=_orders(uncounted, "contract_cents", "sales_leg_closed_at", lambda row: str(row["reason"])),
        adjustments=_adjustments(carried),
        later_adjustments=_adjustments(later.sort_values(["booked_period", "order_id"])),
    )
    plan = plan_for(salesperson_id, CloseSettings.from_settings(settings).commission)
    if plan is not None:
        statement.adjustments = _with_commission(statement.adjustments, ledger, closed, plan)
        effects = [a.commission_cents or 0 for a in statement.adjustments]
        statement.commission = Commission(
            plan=plan.describe(), on_counted_cents=plan.commission_cents(statement.recognized_cents),
            adjustments_cents=sum(effects), clawback_cents=sum(e for e in effects if e < 0),
        )
    return statement
