"""The detail pages' reads and their explanations in words: an order, a customer, a salesperson.

`order_detail` gathers an order with its invoices, receipts (and why each was linked),
write-offs, alerts and history; `what_is_missing` says in Chinese which leg is open and what
to do; `evidence_sentences` turns the matching engine's evidence JSON into sentences;
`salesperson_orders` answers 「我的业绩为什么不认」 order by order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from recon_pipeline.as_of import cutoff_period, next_cutoff
from recon_pipeline.dashboard.access import Scope
from recon_pipeline.dashboard.formatting import timestamp, yuan
from recon_pipeline.dashboard.labels import (
    APPROVAL_STATUSES,
    CRM_STATUSES,
    INVOICE_TYPES,
    MATCH_METHODS,
    MATCH_STATUSES,
    REVIEW_STATUSES,
    WRITEOFF_STATUSES,
)
from recon_pipeline.dashboard.queries import LINKED_STATUSES, MartReader

ORDERS = "mart.fct_order_reconciliation"
MATCHES = "mart.fct_receipt_matches"


# ---------------------------------------------------------------- evidence in words


def parse_json(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# Risk flags the matching engine may set in the evidence (`risk_flags`: codes or
# {code, message}); an unknown code is shown with its own message, or as written.
RISK_FLAGS = {
    "amount_mismatch": "金额与该客户任何未结金额（单笔或组合）都对不上",
    "amount_fits_nothing": "金额与该客户任何未结金额（单笔或组合）都对不上",
    "non_goods_memo": "附言写的不是货款（如押金、利息、工资、退款、借款）",
    "memo_not_goods": "附言写的不是货款（如押金、利息、工资、退款、借款）",
    "memo_conflict": "附言里的订单属于另一个客户",
    # The matching engine's flags (matching/linking.py, engine.py).
    "non_sales_memo": "附言显示非货款，请勿直接核销到订单",
    "personal_payer": "个人付款：仅因财务曾确认此人为该客户付款而建议，请核实",
    "branch_payer": "付款方与客户为总分公司关系",
    "third_party_payer": "第三方代付，以附言订单号为依据",
    "ambiguous_memo": "附言中的订单号属于多个客户",
    "amount_contradicts_memo": "金额与附言订单的未结金额不符",
    "payment_intermediary": "付款方为支付机构，附言中没有可识别的订单号",
}


def risk_warnings(evidence: dict[str, Any]) -> list[str]:
    """Why a suggestion (or a link) is risky, in Chinese; empty when nothing is odd."""
    warnings: list[str] = []
    flags = evidence.get("risk_flags") or evidence.get("risks") or []
    if isinstance(flags, (str, dict)):
        flags = [flags]
    for flag in flags if isinstance(flags, list) else []:
        if isinstance(flag, dict):
            code, message = str(flag.get("code") or ""), flag.get("message") or flag.get("text")
            text = message or RISK_FLAGS.get(code) or code
        else:
            text = RISK_FLAGS.get(str(flag), str(flag))
        if text and text not in warnings:
            warnings.append(str(text))
    allocation = evidence.get("allocation") if isinstance(evidence.get("allocation"), dict) else {}
    if (evidence.get("amount_mismatch") is True or allocation.get("amount_mismatch") is True) and RISK_FLAGS["amount_mismatch"] not in warnings:
        warnings.append(RISK_FLAGS["amount_mismatch"])
    if evidence.get("memo_conflict") and RISK_FLAGS["memo_conflict"] not in warnings:
        warnings.append(RISK_FLAGS["memo_conflict"])
    return warnings


def evidence_sentences(raw: Any, method: str | None, score: Any, customer_names: dict[str, str] | None = None) -> list[str]:
    """Why this bank line was linked to this customer / order, one sentence per fact."""
    evidence = parse_json(raw)
    names = customer_names or {}
    payer = evidence.get("payer") if isinstance(evidence.get("payer"), dict) else {}
    said: list[str] = []
    payer_raw = payer.get("raw") or payer.get("normalized")
    if method == "memo_order_id":
        tokens = evidence.get("memo_tokens") or {}
        written = "、".join(f"「{t}」→ {o}" for t, o in tokens.items()) if isinstance(tokens, dict) else ""
        said.append(f"附言「{evidence.get('memo') or ''}」写有订单号{('：' + written) if written else ''}")
        if evidence.get("memo_payer_score") is not None:
            said.append(f"付款方名称与该订单客户相符度 {evidence['memo_payer_score']} 分")
    elif method == "payer_account":
        learned = evidence.get("learned_account") if isinstance(evidence.get("learned_account"), dict) else {}
        who = learned.get("confirmed_by")
        when = learned.get("confirmed_at")
        said.append(
            f"付款账号 {evidence.get('payer_account') or ''} 已由财务确认属于该客户"
            + (f"（{who}{'，' + str(when)[:10] if when else ''}）" if who else "")
        )
    elif method == "exact_name":
        said.append(f"付款户名「{payer_raw or ''}」规范化后与客户全称一致")
    elif method == "alias":
        learned = evidence.get("learned_alias")
        said.append(f"付款户名「{payer_raw or ''}」是该客户的" + ("财务确认过的别名" if learned else "已知别名"))
    elif method == "fuzzy":
        core = payer.get("core") or payer_raw or ""
        said.append(f"付款户名核心名「{core}」与客户名称相似度 {score if score is not None else '—'} 分（模糊匹配只作建议，须财务确认）")
    elif method == "manual":
        said.append("系统未能识别付款方，由财务核销人工关联")
    elif method == "none":
        reason = evidence.get("reason")
        said.append({"tie": "前两名候选客户得分接近，系统不自动关联", "no_candidate": "没有名称相近的客户"}.get(reason, "未能识别付款方"))
    candidates = [c for c in evidence.get("candidates") or [] if isinstance(c, dict)]
    others = candidates[1:4] if method in ("fuzzy", "none", "alias", "exact_name") else []
    if method == "none":
        others = candidates[:3]
    if others:
        said.append("其他候选：" + "、".join(
            f"{names.get(c.get('customer_id'), c.get('customer_id'))}（{c.get('score')} 分）" for c in others))
    writeoffs = evidence.get("writeoff_ids") or []
    if writeoffs:
        said.append(f"财务已核销（{'、'.join(map(str, writeoffs))}"
                    + (f"，{evidence['confirmed_by']}" if evidence.get("confirmed_by") else "") + "）")
    allocation = evidence.get("allocation") if isinstance(evidence.get("allocation"), dict) else {}
    fit = allocation.get("fit")
    fit_words = {"exact": "金额与订单未结金额一致", "combined": "一笔付款对应多张订单（金额组合一致）",
                 "memo": "按附言订单分配", "partial": "部分付款", "over": "多付，余额留作未分配",
                 "refund": "退款", "unapplied": "未分配到订单"}
    if fit in fit_words:
        said.append(fit_words[fit])
    return said


# ---------------------------------------------------------------- an order


@dataclass
class OrderDetail:
    order: dict[str, Any]
    invoices: list[dict]
    receipts: list[dict]
    writeoffs: list[dict]
    legal: list[dict]
    alerts: list[dict]
    events: list[dict]
    missing: list[dict]


def order_row(reader: MartReader, order_id: str, scope: Scope) -> dict | None:
    if not reader.has(ORDERS):
        return None
    where, params = scope.sql("o.salesperson_id")
    optional = ", ".join(
        reader.column(ORDERS, c, prefix="o")
        for c in ("contract_no", "customer_name", "salesperson_name", "signed_at", "lifecycle_stage",
                  "crm_status", "approval_status", "invoices_covered_at", "receipts_covered_at", "closed_at", "currency")
    )
    rows = reader.rows(
        f"""SELECT o.order_id, o.customer_id, o.salesperson_id, o.region_code, o.industry, o.contract_amount,
                   o.invoiced_amount, o.received_amount, o.written_off_amount, o.outstanding_amount,
                   o.sales_leg_closed_at, o.legal_leg_closed_at, o.finance_leg_closed_at, o.is_closed,
                   o.recognized_period, o.status, {optional}
            FROM {ORDERS} o WHERE o.order_id = ? AND {where}""",
        [order_id] + params,
    )
    return rows[0] if rows else None


def order_detail(reader: MartReader, order_id: str, scope: Scope, as_of: datetime | None,
                 cutoff_hour: int, tolerance: Decimal) -> OrderDetail | None:
    order = order_row(reader, order_id, scope)
    if order is None:
        return None
    invoices = reader.rows(
        "SELECT invoice_no, invoice_date, invoice_type, status, amount_excl_tax, tax_amount, total_amount, counts, counted_amount "
        "FROM mart.fct_invoices WHERE order_id = ? ORDER BY invoice_date, invoice_no", [order_id]
    ) if reader.has("mart.fct_invoices") else []
    receipts = []
    if reader.has(MATCHES):
        receipts = reader.rows(
            f"""SELECT m.account_no, m.txn_id, {reader.column(MATCHES, 'txn_time', prefix='m')},
                       {reader.column(MATCHES, 'amount', prefix='m')}, m.allocated_amount, m.match_method, m.match_score,
                       m.match_status, {reader.column(MATCHES, 'counterparty_name', prefix='m')},
                       {reader.column(MATCHES, 'memo', prefix='m')}, {reader.column(MATCHES, 'evidence', prefix='m')}
                FROM {MATCHES} m WHERE m.order_id = ? ORDER BY txn_time NULLS LAST, m.txn_id""",
            [order_id],
        )
    names = customer_names(reader, {order["customer_id"]} | {
        c.get("customer_id") for r in receipts for c in parse_json(r.get("evidence")).get("candidates") or [] if isinstance(c, dict)})
    for receipt in receipts:
        evidence = receipt.pop("evidence", None)
        receipt["why"] = evidence_sentences(evidence, receipt["match_method"], receipt["match_score"], names)
        receipt["warnings"] = risk_warnings(parse_json(evidence))
    writeoffs = reader.rows(
        "SELECT writeoff_id, txn_id, invoice_no, amount, confirmed_by, confirmed_at, status "
        "FROM mart.fct_writeoffs WHERE order_id = ? ORDER BY confirmed_at NULLS LAST, writeoff_id", [order_id]
    ) if reader.has("mart.fct_writeoffs") else []
    legal = reader.rows(
        "SELECT archive_no, review_status, submitted_at, reviewed_at, archived_at FROM mart.fct_legal_archive "
        "WHERE order_id = ? ORDER BY submitted_at NULLS LAST, archive_no", [order_id]
    ) if reader.has("mart.fct_legal_archive") else []
    alerts = []
    if reader.has("mart.alerts"):
        txns = [r["txn_id"] for r in receipts]
        order_column = "order_id" if reader.has_column("mart.alerts", "order_id") else "entity_id"
        alerts = reader.rows(
            f"""SELECT alert_id, CAST(alert_level AS INTEGER) AS alert_level, alert_type, entity_id, message,
                       {reader.column('mart.alerts', 'first_seen_as_of')}
                FROM mart.alerts WHERE {order_column} = ? OR entity_id = ? OR list_contains(?::VARCHAR[], entity_id)
                ORDER BY alert_level NULLS LAST, alert_type""",
            [order_id, order_id, txns],
        )
    events = reader.rows(
        "SELECT event_at, event_type, detail, previous_detail, amount FROM mart.fct_order_events "
        "WHERE order_id = ? ORDER BY event_at, event_type = 'closed', event_type", [order_id]
    ) if reader.has("mart.fct_order_events") else []
    for event in events:
        event["text"] = event_text(event)
    pending = [r for r in receipts if r["match_status"] == "suggested"]
    missing = what_is_missing(order, legal, pending, as_of, cutoff_hour, tolerance)
    return OrderDetail(order, invoices, receipts, writeoffs, legal, alerts, events, missing)


def what_is_missing(order: dict, legal: list[dict], pending_receipts: list[dict], as_of: datetime | None,
                    cutoff_hour: int, tolerance: Decimal) -> list[dict]:
    """Each open leg in words with what to do: [{leg, text, todo, link?}]; a closed order says
    so and where it counts."""
    amount = order.get("contract_amount") or Decimal(0)
    said: list[dict] = []
    if order.get("is_closed"):
        said.append({"leg": "全部", "ok": True,
                     "text": f"三联单已闭环（{timestamp(order.get('closed_at') or order.get('finance_leg_closed_at'))}），计入 {order.get('recognized_period') or '—'} 期业绩"})
        return said
    crm = order.get("crm_status") or ("signed" if order.get("sales_leg_closed_at") else order.get("status"))
    if crm == "cancelled" or order.get("status") == "cancelled":
        return [{"leg": "销售", "ok": False, "text": "合同已取消，不计业绩", "todo": "如取消有误，请在 CRM 恢复合同状态"}]
    if not order.get("sales_leg_closed_at"):
        approval = APPROVAL_STATUSES.get(order.get("approval_status") or "", "")
        said.append({"leg": "销售", "ok": False,
                     "text": f"合同尚未签约（CRM 状态：{CRM_STATUSES.get(crm or '', crm or '未知')}{'，' + approval if approval else ''}）",
                     "todo": "请在 CRM 完成审批与签约"})
    if not order.get("legal_leg_closed_at"):
        latest = legal[-1] if legal else None
        if latest is None:
            text, todo = "法务未归档：尚未提交法务审核", "请将合同提交法务审核归档"
        elif latest.get("review_status") == "rejected":
            text, todo = f"法务已驳回（{latest['archive_no']}）", "请按法务意见补充材料后重新提交"
        elif latest.get("review_status") == "approved" and not latest.get("archived_at"):
            text, todo = f"法务审核已通过，尚未归档（{latest['archive_no']}）", "请法务完成归档"
        else:
            text, todo = f"法务审核中（{latest['archive_no']}，{timestamp(latest.get('submitted_at'))} 提交）", "请联系法务尽快审核归档"
        said.append({"leg": "法务", "ok": False, "text": text, "todo": todo})
    invoiced = order.get("invoiced_amount") or Decimal(0)
    if invoiced < amount - tolerance:
        short = amount - invoiced
        said.append({"leg": "财务", "ok": False,
                     "text": ("发票未开" if invoiced == 0 else f"发票未开齐：还差 {yuan(short)} 未开票（已开 {yuan(invoiced)}，红字冲销后净额）"),
                     "todo": "请财务按合同开票"})
    received = order.get("received_amount") or Decimal(0)
    if received < amount - tolerance:
        short = amount - received
        item = {"leg": "财务", "ok": False, "text": f"还差 {yuan(short)} 回款（已回款 {yuan(received)}）",
                "todo": "请联系客户付款，并提醒客户在附言写订单号"}
        if pending_receipts:
            waiting = sum((r["allocated_amount"] or 0 for r in pending_receipts), Decimal(0))
            item["todo"] = f"有 {len(pending_receipts)} 笔到账（{yuan(waiting)}）待财务确认付款方"
            item["link"] = "/review"
        said.append(item)
    written_off = order.get("written_off_amount") or Decimal(0)
    if received > 0 and written_off < received - tolerance:
        said.append({"leg": "财务", "ok": False, "text": f"有 {yuan(received - written_off)} 回款尚未核销",
                     "todo": "请财务在核销系统核销（不影响闭环，但会触发二级预警）", "soft": True})
    if as_of is not None and said:
        cutoff = next_cutoff(as_of, cutoff_hour)
        said.append({"leg": "期间", "ok": None,
                     "text": f"须在 {timestamp(cutoff)} 封关前闭环，才能计入 {cutoff_period(as_of, cutoff_hour)} 期业绩"})
    return said


EVENT_WORDS = {
    "legal_submitted": "提交法务审核（{detail}）",
    "legal_archived": "法务归档（{detail}）",
    "closed": "三联单闭环，计入 {detail} 期",
}


def event_text(event: dict) -> str:
    kind, detail, previous = event["event_type"], event.get("detail"), event.get("previous_detail")
    if kind == "crm_status":
        now = CRM_STATUSES.get(detail, detail)
        return f"CRM 状态：{CRM_STATUSES.get(previous, previous)} → {now}" if previous else f"CRM 录入，状态：{now}"
    if kind == "approval":
        return f"审批：{APPROVAL_STATUSES.get(detail, detail)}"
    if kind == "amount_changed":
        return f"合同金额修改：{yuan(Decimal(previous)) if previous else '—'} → {yuan(Decimal(detail)) if detail else '—'}"
    if kind == "legal_reviewed":
        return f"{REVIEW_STATUSES.get(detail, detail)}（{previous}）"
    if kind == "invoice":
        return f"{INVOICE_TYPES.get(previous, '发票')} {detail}"
    if kind == "receipt":
        return f"到账 {detail}（{MATCH_STATUSES.get(previous, previous)}）"
    if kind == "writeoff":
        return f"财务核销 {detail}（{WRITEOFF_STATUSES.get(previous, previous)}）"
    template = EVENT_WORDS.get(kind)
    return template.format(detail=detail) if template else f"{kind} {detail or ''}"


# ---------------------------------------------------------------- names


def customer_names(reader: MartReader, customer_ids: set) -> dict[str, str]:
    ids = sorted(i for i in customer_ids if i)
    if not ids:
        return {}
    for table in ("mart.dim_customers", "mart.customer_collection_health", ORDERS):
        if reader.has_column(table, "customer_name"):
            sql = f"SELECT customer_id, any_value(customer_name) FROM {table} WHERE list_contains(?::VARCHAR[], customer_id) GROUP BY 1"
            return {k: v for k, v in reader.conn.execute(sql, [ids]).fetchall() if v}
    return {}


def salesperson_names(reader: MartReader) -> dict[str, str]:
    if reader.has("mart.dim_salespeople"):
        return dict(reader.conn.execute("SELECT salesperson_id, salesperson_name FROM mart.dim_salespeople WHERE salesperson_name IS NOT NULL").fetchall())
    if reader.has_column(ORDERS, "salesperson_name"):
        return dict(reader.conn.execute(f"SELECT salesperson_id, any_value(salesperson_name) FROM {ORDERS} WHERE salesperson_name IS NOT NULL GROUP BY 1").fetchall())
    return {}


# ---------------------------------------------------------------- a customer


def customer_detail(reader: MartReader, customer_id: str, scope: Scope) -> dict | None:
    visible_sql, visible_params = scope.customer_sql("c.customer_id", reader.has("mart.dim_customers"))
    customer = None
    if reader.has("mart.dim_customers"):
        rows = reader.rows(
            f"SELECT c.* FROM mart.dim_customers c WHERE c.customer_id = ? AND {visible_sql}", [customer_id] + visible_params
        )
        customer = rows[0] if rows else None
    if customer is None and reader.has(ORDERS):
        rows = reader.rows(
            f"""SELECT o.customer_id, any_value({'o.customer_name' if reader.has_column(ORDERS, 'customer_name') else 'NULL'}) AS customer_name
                FROM {ORDERS} o WHERE o.customer_id = ? AND {scope.sql('o.salesperson_id')[0]} GROUP BY 1""",
            [customer_id] + scope.sql("o.salesperson_id")[1],
        )
        customer = rows[0] if rows else None
    if customer is None:
        return None
    totals = reader.rows(
        f"""SELECT count(*) AS orders, count(*) FILTER (WHERE is_closed) AS closed,
                   coalesce(sum(contract_amount) FILTER (WHERE sales_leg_closed_at IS NOT NULL), 0) AS signed,
                   coalesce(sum(received_amount), 0) AS received,
                   coalesce(sum(outstanding_amount) FILTER (WHERE sales_leg_closed_at IS NOT NULL AND NOT coalesce(is_closed, FALSE)), 0) AS outstanding
            FROM {ORDERS} o WHERE o.customer_id = ? AND {scope.sql('o.salesperson_id')[0]}""",
        [customer_id] + scope.sql("o.salesperson_id")[1],
    )[0] if reader.has(ORDERS) else {}
    payers = []
    if reader.has(MATCHES):
        account = reader.column(MATCHES, "counterparty_account", prefix="m")
        name = reader.column(MATCHES, "counterparty_name", prefix="m")
        payers = reader.rows(
            f"""SELECT counterparty_name, counterparty_account, count(DISTINCT txn_id) AS lines, sum(allocated_amount) AS amount,
                       max(txn_time) AS last_seen,
                       bool_or(match_status = 'confirmed') AS confirmed,
                       string_agg(DISTINCT match_method, ',') AS methods
                FROM (SELECT m.txn_id, m.allocated_amount, m.match_status, m.match_method,
                             {reader.column(MATCHES, 'txn_time', prefix='m')}, {name}, {account}
                      FROM {MATCHES} m WHERE m.customer_id = ? AND m.match_status IN {LINKED_STATUSES})
                GROUP BY 1, 2 ORDER BY lines DESC, amount DESC LIMIT 50""",
            [customer_id],
        )
    health = reader.rows(
        "SELECT * FROM mart.customer_collection_health WHERE customer_id = ?", [customer_id]
    ) if reader.has("mart.customer_collection_health") else []
    aliases = [a.strip() for a in str(customer.get("aliases") or "").replace("；", ";").split(";") if a.strip()]
    learned = sorted({p["counterparty_name"] for p in payers if p.get("confirmed") and p.get("counterparty_name")}
                     - {customer.get("customer_name")} - set(aliases))
    return {"customer": customer, "totals": totals, "payers": payers, "health": health[0] if health else None,
            "aliases": aliases, "learned_aliases": learned}
