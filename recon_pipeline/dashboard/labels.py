"""Chinese labels for the mart's vocabularies, and how each health metric is shown."""

from __future__ import annotations

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
    "manual": "人工",
    "none": "无",
}

# metric -> (label, kind); kind decides the format: ratio (percent), hours, count, number.
METRICS = {
    "contract_receipt_match_rate": ("合同回款匹配率（近30天）", "ratio"),
    "hours_to_cutoff": ("距封关小时数", "hours"),
    "unarchived_signed_contracts": ("已签约未归档合同", "count"),
    "stalled_approvals": ("超时未审批", "count"),
    "avg_approval_hours": ("平均审批时长", "hours"),
    "high_risk_customers": ("高风险客户", "count"),
}


def metric_display(metric: str, value) -> str:
    """A metric value in its unit: 95.3%, 54.0 小时, 3 个."""
    kind = METRICS.get(metric, (metric, "number"))[1]
    if value is None:
        return "—"
    if kind == "ratio":
        return percent(value)
    if kind == "hours":
        return f"{number(value, 1)} 小时"
    if kind == "count":
        return f"{number(value)} 个"
    return number(value, 2)
