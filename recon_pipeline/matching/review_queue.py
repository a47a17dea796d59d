"""The review queue: suggested links for finance to confirm or reject (CSV and XLSX)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from recon_pipeline.close.export import safe_text
from recon_pipeline.money import cents_text

REVIEW_QUEUE_HEADERS = {
    "feedback_id": "反馈编号",
    "account_no": "本方账号",
    "txn_id": "流水号",
    "txn_time": "交易时间",
    "amount": "金额",
    "counterparty_name": "对方户名",
    "counterparty_account": "对方账号",
    "memo": "附言",
    "customer_id": "建议客户编号",
    "customer_name": "建议客户名称",
    "order_id": "建议订单号",
    "match_method": "匹配方式",
    "match_score": "匹配分数",
    "candidates": "其他候选",
    "warning": "风险提示",
    "decision": "决定(confirm/reject)",
    "decided_by": "确认人",
    "decided_at": "确认时间",
}


# What each evidence `risk_flags` entry tells finance (docs/architecture.md lists the flags).
_RELATIONS = {
    "branch_of_customer": "付款方是该客户的分公司，不是客户本身",
    "head_office_of_customer": "付款方是该分公司客户的总公司",
    "other_branch_of_customer": "付款方是该客户的另一家分支机构",
    "other_customer": "另一客户代付",
    "person": "个人代付",
    "payment_intermediary": "支付机构代收付",
    "unknown": "未知单位代付",
}


def risk_warning(evidence: dict) -> str:
    """The Chinese warning the review queue shows for a link's `risk_flags` ("" when none)."""
    flags = evidence.get("risk_flags") or []
    relation = _RELATIONS.get(evidence.get("payer_relation", ""), "")
    texts = []
    for flag in flags:
        if flag == "non_sales_memo":
            texts.append(f"附言显示非货款（{evidence.get('memo_purpose', '')}），请勿直接核销到订单")
        elif flag == "personal_payer":
            texts.append("个人付款：仅因财务曾确认此人为该客户付款而建议，请核实")
        elif flag == "branch_payer":
            texts.append(relation or "付款方与客户为总分公司关系")
        elif flag == "third_party_payer":
            texts.append(f"{relation or '第三方代付'}，以附言订单号为依据")
        elif flag == "ambiguous_memo":
            texts.append("附言中的订单号属于多个客户")
        elif flag == "amount_contradicts_memo":
            texts.append("金额与附言订单的未结金额不符")
        elif flag == "payment_intermediary":
            texts.append("付款方为支付机构，附言中没有可识别的订单号")
    return "；".join(dict.fromkeys(texts))


def review_queue(links: pd.DataFrame, bank: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Suggested links for finance to confirm or reject, largest amount first (Chinese headers).

    The `决定` / `确认人` columns are left empty for finance; a filled-in file dropped into the
    `match_feedback` source feeds the decisions back (rejected ones never come back).
    """
    suggested = links[links["match_status"] == "suggested"]
    if suggested.empty:
        return pd.DataFrame(columns=list(REVIEW_QUEUE_HEADERS.values()))
    per_txn = (suggested.groupby(["account_no", "txn_id"], sort=False)
               .agg(customer_id=("customer_id", "first"), match_method=("match_method", "first"),
                    match_score=("match_score", "first"), evidence=("evidence", "first"),
                    order_id=("order_id", lambda s: ";".join(sorted(o for o in s if isinstance(o, str)))))
               .reset_index())
    lines = bank.drop_duplicates(["account_no", "txn_id"])[
        ["account_no", "txn_id", "txn_time", "amount_cents", "counterparty_name", "counterparty_account", "memo"]]
    queue = per_txn.merge(lines, on=["account_no", "txn_id"], how="left")
    names = dict(zip(customers["customer_id"], customers["customer_name"]))
    queue["customer_name"] = queue["customer_id"].map(names)
    queue["candidates"] = [
        "; ".join(f"{c['customer_id']}({c['score']})" for c in json.loads(ev).get("candidates", [])[1:])
        if isinstance(ev, str) else "" for ev in queue["evidence"]]
    queue["warning"] = [risk_warning(json.loads(ev)) if isinstance(ev, str) else "" for ev in queue["evidence"]]
    queue = queue.sort_values(["amount_cents", "txn_time", "txn_id"], ascending=[False, True, True])
    queue["amount"] = [cents_text(c) for c in queue["amount_cents"]]
    # A filled-in queue dropped into the landing zone's match_feedback/ folder is read back as
    # decisions: each line carries its own feedback id.
    queue["feedback_id"] = "RQ-" + queue["account_no"].astype(str) + "-" + queue["txn_id"].astype(str)
    queue["decision"] = ""
    queue["decided_by"] = ""
    queue["decided_at"] = ""
    # Names and memos come from outside (the payer writes the memo): never a formula in Excel.
    # Keys and amounts stay as they are: a filled-in queue is read back as decisions.
    for column in ("counterparty_name", "memo", "customer_name", "candidates"):
        queue[column] = [safe_text(v) if isinstance(v, str) else v for v in queue[column]]
    return queue[list(REVIEW_QUEUE_HEADERS)].rename(columns=REVIEW_QUEUE_HEADERS).reset_index(drop=True)


def export_review_queue(links: pd.DataFrame, bank: pd.DataFrame, customers: pd.DataFrame,
                        out_dir: str | Path, stem: str = "review_queue") -> tuple[Path, Path]:
    """Write the review queue as CSV (UTF-8 with BOM, opens in Chinese Excel) and XLSX."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    queue = review_queue(links, bank, customers)
    csv_path, xlsx_path = out / f"{stem}.csv", out / f"{stem}.xlsx"
    queue.to_csv(csv_path, index=False, encoding="utf-8-sig")
    queue.to_excel(xlsx_path, index=False, sheet_name="待确认匹配")
    return csv_path, xlsx_path
