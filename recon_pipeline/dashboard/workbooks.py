"""Page workbooks: `?format=xlsx` on a page made of several small tables (the overview, the
health board, an order) downloads them as the sheets of one Excel file, the way the page
shows them (names for codes, durations in words, money as numbers with two decimals).

The list pages export their one long table instead (tables.py); both go through export.py,
so the same formula-safe rule applies to every cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from recon_pipeline.as_of import duration_text
from recon_pipeline.dashboard.labels import (
    GROUP_BY,
    INVOICE_TYPES,
    ITEM_CLASSES,
    MATCH_METHODS,
    MATCH_STATUSES,
    METRICS,
    REVIEW_STATUSES,
    WRITEOFF_STATUSES,
    metric_display,
    threshold_display,
)
from recon_pipeline.dashboard.tables import Column


@dataclass(frozen=True)
class Sheet:
    name: str
    columns: tuple[Column, ...]
    rows: list[dict[str, Any]]

    def values(self) -> Iterable[tuple]:
        for row in self.rows:
            yield tuple(c.display(row.get(c.key)) if c.display else row.get(c.key) for c in self.columns)


def _label(mapping):
    return lambda value: mapping.get(value, value) if value is not None else None


def _duration(seconds) -> str | None:
    return None if seconds is None else duration_text(float(seconds))


MONEY = "money"


def overview_sheets(context: dict, view) -> list[Sheet]:
    group_by = context["group_by"]
    if group_by == "salesperson":
        group_name = view.person
    elif group_by == "region":
        group_name = lambda code: view.region_name(code) or "未填写"  # noqa: E731
    else:
        group_name = lambda value: value or "未填写"  # noqa: E731
    breakdown = (
        Column("grp", GROUP_BY[group_by], display=group_name),
        Column("signed", "签约金额", MONEY), Column("recognized", "确认收入", MONEY), Column("collected", "回款金额", MONEY),
        Column("discrepancy_rate", "差异率", "percent"),
    ) + ((Column("needs_review", "需复核"),) if group_by == "salesperson" else ())
    return [
        Sheet("签约确认回款趋势", (Column("period", "期间"), Column("signed", "签约金额", MONEY),
                                   Column("recognized", "确认收入", MONEY), Column("collected", "回款金额", MONEY)),
              context["trend"]),
        Sheet(f"{context['period']}按{GROUP_BY[group_by]}", breakdown, context["breakdown"]),
        Sheet("订单生命周期漏斗", (Column("label", "环节"), Column("reached_count", "到达订单数", "int"),
                                   Column("reached_amount", "到达金额", MONEY), Column("stuck_count", "停留订单数", "int"),
                                   Column("stuck_amount", "停留金额", MONEY)), context["funnel"]),
    ]


def health_sheets(context: dict, view) -> list[Sheet]:
    metrics = [{**m, "name": METRICS.get(m["metric"], (m["metric"],))[0],
                "shown": metric_display(m["metric"], m.get("value")),
                "range": threshold_display(m["metric"], m.get("threshold")),
                "state": {"green": "正常", "red": "异常"}.get(m.get("status"), m.get("status")),
                "rule": METRICS.get(m["metric"], ("", "", "", ""))[3]} for m in context.get("metrics") or []]
    at_risk = context.get("at_risk") or {}
    return [
        Sheet("指标", (Column("name", "指标"), Column("shown", "当前值"), Column("range", "正常范围"),
                       Column("state", "状态"), Column("rule", "规则")), metrics),
        Sheet("响应与修复（近30天）", (
            Column("item_class", "类别", display=_label(ITEM_CLASSES)), Column("item_count", "事项", "int"),
            Column("acknowledged", "已确认", "int"), Column("ack_seconds", "平均确认用时", display=_duration),
            Column("ack_late", "确认超时", "int"), Column("repaired", "已修复", "int"),
            Column("mttr_seconds", "平均修复用时（MTTR）", display=_duration), Column("overdue", "超时未办", "int"),
        ), context.get("response") or []),
        Sheet("已签约未归档订单", (
            Column("order_id", "订单号"), Column("contract_no", "合同编号"), Column("customer_name", "客户"),
            Column("salesperson_id", "销售", display=view.person), Column("region_code", "区域", display=view.region_name),
            Column("contract_amount", "合同金额", MONEY), Column("outstanding_amount", "未回款", MONEY),
        ), at_risk.get("rows") or []),
    ]


def order_sheets(detail, view) -> list[Sheet]:
    o = detail.order
    legs = [
        {"leg": "销售（签约）", "state": "已签约" if o.get("sales_leg_closed_at") else "未签约", "at": o.get("sales_leg_closed_at")},
        {"leg": "法务（审核归档）", "state": "已归档" if o.get("legal_leg_closed_at") else "未归档", "at": o.get("legal_leg_closed_at")},
        {"leg": "财务（开票并回款）", "state": "已闭合" if o.get("finance_leg_closed_at") else "未闭合", "at": o.get("finance_leg_closed_at")},
    ]
    missing = [{"leg": m.get("leg"), "text": m.get("text"), "todo": m.get("todo")} for m in detail.missing]
    receipts = [{**r, "why": "；".join([f"⚠ {w}" for w in r.get("warnings") or []] + list(r.get("why") or []))}
                for r in detail.receipts]
    invoices = [{**i, "kind": "voided" if i.get("status") == "voided" else i.get("invoice_type")} for i in detail.invoices]
    return [
        Sheet("三联单", (Column("leg", "环节"), Column("state", "状态"), Column("at", "闭合时间", "datetime")), legs),
        Sheet("还差什么", (Column("leg", "环节"), Column("text", "说明"), Column("todo", "怎么做")), missing),
        Sheet("发票", (Column("invoice_no", "发票号"), Column("invoice_date", "开票日期", "date"),
                       Column("kind", "类型", display=_label(INVOICE_TYPES)), Column("total_amount", "价税合计", MONEY),
                       Column("counted_amount", "计入开票", MONEY)), invoices),
        Sheet("回款", (Column("txn_id", "流水号"), Column("account_no", "本方账号"), Column("txn_time", "到账时间", "datetime"),
                       Column("counterparty_name", "付款方"), Column("memo", "附言"), Column("amount", "到账金额", MONEY),
                       Column("allocated_amount", "分配到本单", MONEY),
                       Column("match_method", "识别方式", display=_label(MATCH_METHODS)), Column("match_score", "得分", "score"),
                       Column("match_status", "状态", display=_label(MATCH_STATUSES)), Column("why", "为什么关联到本单")),
              receipts),
        Sheet("核销", (Column("writeoff_id", "核销编号"), Column("txn_id", "流水号"), Column("invoice_no", "发票号"),
                       Column("amount", "金额", MONEY), Column("confirmed_by", "确认人"),
                       Column("confirmed_at", "确认时间", "datetime"),
                       Column("status", "状态", display=_label(WRITEOFF_STATUSES))), detail.writeoffs),
        Sheet("法务", (Column("archive_no", "归档编号"), Column("review_status", "审核状态", display=_label(REVIEW_STATUSES)),
                       Column("submitted_at", "提交", "datetime"), Column("reviewed_at", "审核", "datetime"),
                       Column("archived_at", "归档", "datetime")), detail.legal),
        Sheet("状态变化", (Column("event_at", "时间", "datetime"), Column("text", "事件"), Column("amount", "金额", MONEY)),
              detail.events),
    ]
