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
    "decision": "决定(confirm/reject)",
    "decided_by": "确认人",
    "decided_at": "确认时间",
}


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
