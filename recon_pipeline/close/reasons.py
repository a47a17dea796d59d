"""Why an order did or did not count, and what changed after a close, in words a salesperson reads.

Pure functions over one order's row (a mapping with the columns `live.ORDER_COLUMNS` reads:
amounts in integer cents, leg timestamps, status). `order_gaps` says what is still missing
(法务未归档, 还差 ¥x 回款, 发票未开); `change_reason` says why a closed period's figure moved.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from recon_pipeline.as_of import cutoff_moment
from recon_pipeline.money import format_yuan

ADJUSTMENT_TYPES = {
    "writeoff_reversed": "核销撤销",
    "receipt_reduced": "回款减少",
    "red_invoice": "红字发票",
    "invoice_voided": "发票作废",
    "invoice_reduced": "开票减少",
    "legal_reopened": "法务联重开",
    "sales_reopened": "销售联重开",
    "order_cancelled": "订单取消",
    "order_removed": "订单删除",
    "late_archive": "补录归档",
    "late_finance": "补录财务",
    "late_signature": "补录签约",
    "late_recognition": "补充确认",
    "period_moved": "确认期间变更",
    "amount_changed": "合同金额变更",
    "salesperson_changed": "销售变更",
    "adjustment_reversed": "调整冲回",
}

CRM_STATUS_WORDS = {
    "draft": "草稿",
    "submitted": "已提交审批",
    "signed": "已签约",
    "cancelled": "已取消",
}

Order = Mapping[str, Any]
Evidence = Mapping[str, Mapping[str, list[str]]]  # order_id -> {'reversed_writeoffs': [...], 'red_invoices': [...], ...}


def _present(value: Any) -> bool:
    """Not None / NaN / NaT / NA (scalar checks only: this runs once per field of every order)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return False
    return not (isinstance(value, float) and value != value)


def _cents(order: Order, column: str) -> int:
    value = order.get(column)
    return int(value) if _present(value) else 0


def _time(value: Any) -> str:
    if not _present(value):
        return "-"
    moment = pd.Timestamp(value).to_pydatetime()
    return moment.strftime("%Y-%m-%d %H:%M")


def _covered(order: Order, side: str, tolerance_cents: int) -> bool:
    """Invoices or receipts cover the contract amount: the mart's own flag when read, else the amounts."""
    flag = order.get(f"{side}_covered")
    if _present(flag):
        return bool(flag)
    return _cents(order, f"{side}_cents") >= _cents(order, "contract_cents") - tolerance_cents


def _short(contract_cents: int, have_cents: int) -> str:
    """'，还差 ¥x' when an amount falls short of the contract (the coverage rule may say "not yet"
    for other reasons, e.g. an invoice dated after the as-of)."""
    return f"，还差 {format_yuan(contract_cents - have_cents)}" if contract_cents > have_cents else ""


def order_gaps(order: Order, tolerance_cents: int = 100) -> list[str]:
    """What an order still lacks to count (its open legs), in words; empty when all three are closed."""
    status = order.get("crm_status") or order.get("status")
    if status == "cancelled":
        return ["订单已取消"]
    gaps: list[str] = []
    if not _present(order.get("sales_leg_closed_at")):
        words = CRM_STATUS_WORDS.get(str(status), str(status or "未知"))
        gaps.append(f"合同未签约（CRM 状态：{words}）")
    if not _present(order.get("legal_leg_closed_at")):
        gaps.append("法务未归档（审核通过并归档后才算完成）")
    if not _present(order.get("finance_leg_closed_at")):
        contract = _cents(order, "contract_cents")
        invoiced, received = _cents(order, "invoiced_cents"), _cents(order, "received_cents")
        if not _covered(order, "invoiced", tolerance_cents):
            gaps.append("发票未开" if invoiced <= 0 else f"发票未开足：已开 {format_yuan(invoiced)}{_short(contract, invoiced)}")
        if not _covered(order, "received", tolerance_cents):
            gaps.append("未收到回款" if received <= 0 else f"回款未到足：已到 {format_yuan(received)}{_short(contract, received)}")
        if not any(gap.startswith(("发票", "回款", "未收到")) for gap in gaps):
            gaps.append("财务联未完成（开票与回款需覆盖合同金额）")
    return gaps


def not_counted_reason(order: Order, period: str, cutoff_hour: int, tolerance_cents: int = 100) -> str:
    """Why a signed order did not count in `period`: its missing legs, or the later period it counts in."""
    gaps = order_gaps(order, tolerance_cents)
    if gaps:
        return "；".join(gaps)
    recognized = order.get("recognized_period")
    cutoff = cutoff_moment(period, cutoff_hour)
    return (f"三联单于 {_time(order.get('order_closed_at'))} 才全部完成，晚于 {period} 封关时点 "
            f"{cutoff:%Y-%m-%d %H:%M}，计入 {recognized}")


def _leg_changes(frozen: Order, live: Order) -> list[str]:
    words = []
    for column, leg in (("sales_leg_closed_at", "销售联"), ("legal_leg_closed_at", "法务联"), ("finance_leg_closed_at", "财务联")):
        before, after = frozen.get(column), live.get(column)
        if _present(before) and _present(after) and pd.Timestamp(before) != pd.Timestamp(after):
            words.append(f"{leg}完成时间由 {_time(before)} 变为 {_time(after)}")
    return words


def _finance_evidence(order_id: str, frozen: Order, live: Order, evidence: Evidence) -> tuple[str, str] | None:
    """The finance-side cause of a change: a reversed write-off, a red-letter or voided invoice."""
    facts = evidence.get(order_id, {})
    received_before, received_now = _cents(frozen, "received_cents"), _cents(live, "received_cents")
    invoiced_before, invoiced_now = _cents(frozen, "invoiced_cents"), _cents(live, "invoiced_cents")
    written_before, written_now = _cents(frozen, "written_off_cents"), _cents(live, "written_off_cents")
    if facts.get("reversed_writeoffs") and (written_now < written_before or received_now < received_before):
        ids = "、".join(facts["reversed_writeoffs"])
        return "writeoff_reversed", (f"核销 {ids} 已撤销：回款由 {format_yuan(received_before)} 变为 "
                                     f"{format_yuan(received_now)}")
    if invoiced_now < invoiced_before:
        change = f"开票净额由 {format_yuan(invoiced_before)} 变为 {format_yuan(invoiced_now)}"
        if facts.get("red_invoices"):
            return "red_invoice", f"红字发票 {'、'.join(facts['red_invoices'])} 冲减：{change}"
        if facts.get("voided_invoices"):
            return "invoice_voided", f"发票 {'、'.join(facts['voided_invoices'])} 已作废：{change}"
        return "invoice_reduced", change
    if written_now < written_before:
        return "writeoff_reversed", f"核销金额由 {format_yuan(written_before)} 变为 {format_yuan(written_now)}（核销已撤销）"
    if received_now < received_before:
        return "receipt_reduced", (f"回款由 {format_yuan(received_before)} 变为 {format_yuan(received_now)}"
                                   "（退款或到账匹配变更）")
    return None


def change_reason(
    *,
    original_period: str,
    salesperson_id: str,
    frozen: Order | None,
    excluded: Order | None,
    live: Order | None,
    live_cents: int,
    frozen_cents: int,
    booked_cents: int,
    delta_cents: int,
    evidence: Evidence,
    cutoff_hour: int,
    tolerance_cents: int = 100,
) -> tuple[str, str]:
    """(adjustment_type, reason in words) for a change of `delta_cents` to a closed period's order.

    `frozen` is the order as counted at the close (None if it did not count), `excluded` its
    snapshot among the orders that did not count, `live` the order now; `booked_cents` what
    earlier adjustments already booked for it.
    """
    if booked_cents != 0 and live_cents == frozen_cents:
        return "adjustment_reversed", f"订单在 {original_period} 的确认已恢复，冲回之前记入的调整"
    if live is None:
        return "order_removed", "订单已不在 CRM 中"
    if delta_cents < 0:
        return _overstated(original_period, salesperson_id, frozen or {}, live, evidence, tolerance_cents)
    return _understated(original_period, salesperson_id, frozen, excluded, live, cutoff_hour)


def _overstated(period: str, salesperson_id: str, frozen: Order, live: Order, evidence: Evidence,
                tolerance_cents: int) -> tuple[str, str]:
    order_id = str(live.get("order_id"))
    if str(live.get("salesperson_id")) != salesperson_id:
        return "salesperson_changed", f"订单已改归销售 {live.get('salesperson_id')}"
    status = live.get("crm_status") or live.get("status")
    if status == "cancelled":
        return "order_cancelled", "订单已取消"
    if live.get("is_closed") and live.get("recognized_period") == period:
        return "amount_changed", (f"合同金额由 {format_yuan(_cents(frozen, 'contract_cents'))} 改为 "
                                  f"{format_yuan(_cents(live, 'contract_cents'))}")
    finance = _finance_evidence(order_id, frozen, live, evidence)
    if not live.get("is_closed"):
        if not _present(live.get("sales_leg_closed_at")):
            words = CRM_STATUS_WORDS.get(str(status), str(status or "未知"))
            return "sales_reopened", f"销售联重新打开：合同状态已变为 {words}"
        if not _present(live.get("legal_leg_closed_at")):
            return "legal_reopened", "法务联重新打开：归档记录已撤回或审核被驳回"
        if finance:
            kind, words = finance
            return kind, f"{words}，财务联重新打开（{'；'.join(order_gaps(live, tolerance_cents))}）"
        return "receipt_reduced", f"财务联重新打开（{'；'.join(order_gaps(live, tolerance_cents))}）"
    moved = f"订单现计入 {live.get('recognized_period')}"
    details = ([finance[1]] if finance else []) + _leg_changes(frozen, live)
    return "period_moved", moved + (f"：{'；'.join(details)}" if details else "")


def _understated(period: str, salesperson_id: str, frozen: Order | None, excluded: Order | None, live: Order,
                 cutoff_hour: int) -> tuple[str, str]:
    if frozen is not None:
        if str(frozen.get("salesperson_id")) != salesperson_id:
            return "salesperson_changed", f"订单由销售 {frozen.get('salesperson_id')} 改归本人"
        return "amount_changed", (f"合同金额由 {format_yuan(_cents(frozen, 'contract_cents'))} 改为 "
                                  f"{format_yuan(_cents(live, 'contract_cents'))}")
    closed = f"订单在 {period} 闭环（三联单于 {_time(live.get('order_closed_at'))} 全部完成）"
    if excluded is not None:
        if str(excluded.get("salesperson_id")) != salesperson_id:
            return "salesperson_changed", f"订单由销售 {excluded.get('salesperson_id')} 改归本人，{closed}"
        for column, kind, words in (
            ("legal_leg_closed_at", "late_archive", "封账后收到归档记录（归档时间 {t}）"),
            ("finance_leg_closed_at", "late_finance", "封账后补录开票、回款或核销（财务联完成于 {t}）"),
            ("sales_leg_closed_at", "late_signature", "封账后补录签约（签约时间 {t}）"),
        ):
            if not _present(excluded.get(column)) and _present(live.get(column)):
                return kind, f"{words.format(t=_time(live.get(column)))}，{closed}"
    return "late_recognition", f"封账后补录的数据使{closed}"
