"""Chinese labels for the mart's vocabularies, and how each health metric is shown and judged."""

from __future__ import annotations

from recon_pipeline.as_of import duration_text
from recon_pipeline.dashboard.formatting import number, percent

ALERT_LEVELS = {"1": "一级", "2": "二级", "3": "三级", "reminder": "提醒"}

ALERT_TYPES = {
    "amount_mismatch": "金额不符",
    "receipt_not_written_off": "到账未核销",
    "salesperson_discrepancy": "销售差异率超标",
    "cutoff_unarchived": "封关前未归档",
    "approval_stalled": "审批超时",
    "match_rate_low": "匹配率偏低",
}

DIFF_TYPES = {
    "contract_without_receipt": "有合同无回款",
    "receipt_without_contract": "有回款无合同",
    "archive_without_order": "有归档无订单",
}

GROUP_BY = {"region": "区域", "industry": "行业", "salesperson": "销售"}

MATCH_METHODS = {
    "memo_order_id": "附言订单号",
    "payer_account": "已确认付款账号",
    "exact_name": "全称一致",
    "alias": "别名",
    "fuzzy": "名称模糊匹配",
    "manual": "人工核销",
    "none": "未识别",
}

MATCH_STATUSES = {
    "auto_linked": "自动关联",
    "confirmed": "财务已确认",
    "suggested": "待财务确认",
    "unmatched": "未匹配",
}

# fct_order_reconciliation.lifecycle_stage (status as a fallback) -> what it means for people.
ORDER_STAGES = {
    "closed": "已闭环",
    "awaiting_archive": "待法务归档",
    "awaiting_invoice": "待开票",
    "awaiting_payment": "待回款",
    "awaiting_signature": "待签约",
    "draft": "草稿",
    "cancelled": "已取消",
    "open": "未闭环",
    "submitted": "待签约",
    "signed": "已签约",
}

CRM_STATUSES = {"draft": "草稿", "submitted": "已提交", "signed": "已签约", "cancelled": "已取消"}
APPROVAL_STATUSES = {"pending": "审批中", "approved": "审批通过", "rejected": "审批驳回"}
REVIEW_STATUSES = {"pending": "法务审核中", "approved": "法务审核通过", "rejected": "法务驳回"}
INVOICE_TYPES = {"normal": "蓝字发票", "red": "红字发票", "voided": "已作废"}
WRITEOFF_STATUSES = {"active": "有效", "reversed": "已冲销"}

ACTIONS = {"acknowledge": "确认收到", "assign": "分派", "comment": "备注", "resolve": "处理完毕"}
DECISIONS = {"confirm": "确认", "reject": "驳回", "undo": "撤销"}
SLA_STEPS = {"acknowledge": "确认收到", "triage": "开始排查", "respond": "响应", "resolve": "处理完毕"}
SLA_STATUSES = {"met": "按时", "late": "超时完成", "pending": "进行中", "overdue": "已超时", "closed": "已解除"}
ITEM_CLASSES = {"health_red": "健康看板红灯", "diff_list": "差额清单", "level_1": "一级预警",
                "level_2": "二级预警", "level_3": "三级预警", "reminder": "提醒"}

ROLES = {"finance": "财务", "manager": "主管", "sales": "销售"}

# metric -> (label, kind, direction, rule). kind decides the format; direction says which side
# of the threshold is red ("below": red under it, "above": red over it).
METRICS = {
    "contract_receipt_match_rate": ("合同回款匹配率（近30天）", "ratio", "below", "低于阈值为异常"),
    "hours_to_cutoff": ("距封关", "hours", "below", "封关前仍有未归档合同时，少于阈值为异常"),
    "unarchived_signed_contracts": ("已签约未归档合同", "count", "above", "封关前 3 天内须全部归档"),
    "stalled_approvals": ("超时未审批", "count", "above", "超过阈值为异常"),
    "avg_approval_hours": ("平均审批时长", "hours", "above", "超过阈值为异常"),
    "high_risk_customers": ("高风险客户", "count", "above", "超过阈值为异常"),
}

# Region codes of the order IDs -> names (settings `region_names` adds to or replaces these).
REGION_NAMES = {
    "BJ": "北京", "SH": "上海", "GZ": "广州", "SZ": "深圳", "HZ": "杭州", "NJ": "南京", "SU": "苏州",
    "WH": "武汉", "CD": "成都", "CQ": "重庆", "XA": "西安", "TJ": "天津", "ZZ": "郑州", "CS": "长沙",
    "QD": "青岛", "XM": "厦门", "JN": "济南", "SY": "沈阳", "DL": "大连", "FZ": "福州", "HF": "合肥",
    "KM": "昆明", "NB": "宁波", "WX": "无锡", "DG": "东莞", "FS": "佛山", "HQ": "总部",
}


def metric_display(metric: str, value) -> str:
    """A metric value in its unit: 95.3%, 2 天 6 小时, 3 个."""
    kind = METRICS.get(metric, (metric, "number"))[1]
    if value is None:
        return "—"
    if kind == "ratio":
        return percent(value)
    if kind == "hours":
        return duration_text(float(value) * 3600)
    if kind == "count":
        return f"{number(value)} 个"
    return number(value, 2)


def threshold_display(metric: str, threshold) -> str:
    """The threshold with the side that is normal: ≥ 95.0%, ≤ 0 个; 不适用 when none applies."""
    if threshold is None:
        return "不适用"
    direction = METRICS.get(metric, (metric, "number", "above"))[2]
    return ("≥ " if direction == "below" else "≤ ") + metric_display(metric, threshold)


def breaches(metric: str, value, threshold) -> bool:
    """Whether the value is on the red side of its threshold (what the status must say)."""
    if value is None or threshold is None:
        return False
    direction = METRICS.get(metric, (metric, "number", "above"))[2]
    return float(value) < float(threshold) if direction == "below" else float(value) > float(threshold)
