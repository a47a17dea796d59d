"""Payer matching: link every bank line to a customer and allocate it to orders.

`build_receipt_links` is the seam between the pipeline and the matching engine: it takes
the current state of the sources as pandas frames (amounts as int64 cents) and returns the
rows of `matching.receipt_links` (see docs/architecture.md).

This first version links by the order ID written in the memo only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from recon_pipeline.settings import Settings

LINK_COLUMNS = [
    "account_no",
    "txn_id",
    "customer_id",
    "order_id",
    "allocated_cents",
    "match_method",
    "match_score",
    "match_status",
    "evidence",
]


@dataclass
class MatchingInputs:
    """Current state of the sources the engine reads (one frame per staging model).

    bank:       account_no, txn_id, txn_time, amount_cents, currency, counterparty_name,
                counterparty_account, memo
    customers:  customer_id, customer_name, credit_code, aliases, region_code, industry
    contracts:  order_id, customer_id, customer_name, salesperson_id, amount_cents, status,
                signed_at
    invoices:   invoice_no, order_id, customer_name, invoice_date, total_amount_cents,
                invoice_type, status
    writeoffs:  writeoff_id, txn_id, order_id, invoice_no, amount_cents, confirmed_by,
                confirmed_at, status
    """

    bank: pd.DataFrame
    customers: pd.DataFrame
    contracts: pd.DataFrame
    invoices: pd.DataFrame
    writeoffs: pd.DataFrame
    as_of: datetime


# YY + 2-letter region + serial, tolerant of case, separators and dropped zero padding.
_ORDER_ID_IN_MEMO = re.compile(r"(?<![0-9A-Za-z])(\d{2})[-_ ]?([A-Za-z]{2})[-_ ]?(\d{1,5})(?![0-9])")


def order_ids_in_memo(memo: str | None) -> list[str]:
    """Canonical order IDs (`25SH00137`) written in a memo, in order of appearance."""
    if not memo:
        return []
    found = []
    for year, region, serial in _ORDER_ID_IN_MEMO.findall(memo):
        order_id = f"{year}{region.upper()}{int(serial):05d}"
        if order_id not in found:
            found.append(order_id)
    return found


def build_receipt_links(inputs: MatchingInputs, settings: Settings) -> pd.DataFrame:
    contracts = inputs.contracts.set_index("order_id")
    rows: list[dict] = []
    for txn in inputs.bank.itertuples(index=False):
        known = [o for o in order_ids_in_memo(txn.memo) if o in contracts.index]
        if not known:
            if txn.amount_cents > 0:
                rows.append(_row(txn, None, None, txn.amount_cents, "none", 0, "unmatched", {}))
            continue
        remaining = txn.amount_cents
        for position, order_id in enumerate(known):
            is_last = position == len(known) - 1
            order_amount = contracts.at[order_id, "amount_cents"]
            share = remaining if is_last or pd.isna(order_amount) else min(remaining, int(order_amount))
            remaining -= share
            evidence = {"memo": txn.memo, "order_ids": known}
            rows.append(
                _row(txn, contracts.at[order_id, "customer_id"], order_id, share,
                     "memo_order_id", 100, "auto_linked", evidence)
            )
    links = pd.DataFrame(rows, columns=LINK_COLUMNS)
    return _apply_writeoffs(links, inputs)


def _row(txn, customer_id, order_id, cents, method, score, status, evidence) -> dict:
    return {
        "account_no": txn.account_no,
        "txn_id": txn.txn_id,
        "customer_id": customer_id,
        "order_id": order_id,
        "allocated_cents": int(cents),
        "match_method": method,
        "match_score": score,
        "match_status": status,
        "evidence": json.dumps(evidence, ensure_ascii=False, default=str),
    }


def _apply_writeoffs(links: pd.DataFrame, inputs: MatchingInputs) -> pd.DataFrame:
    """An active write-off confirms the link of its (txn, order), or adds a manual one."""
    active = inputs.writeoffs[inputs.writeoffs["status"].fillna("active") == "active"]
    if active.empty:
        return links
    accounts = inputs.bank.drop_duplicates("txn_id").set_index("txn_id")
    contracts = inputs.contracts.set_index("order_id")
    extra = []
    for wo in active.itertuples(index=False):
        if wo.txn_id not in accounts.index:
            continue
        same = (links["txn_id"] == wo.txn_id) & (links["order_id"] == wo.order_id)
        if same.any():
            links.loc[same, "match_status"] = "confirmed"
            continue
        txn = accounts.loc[wo.txn_id]
        customer_id = contracts.at[wo.order_id, "customer_id"] if wo.order_id in contracts.index else None
        extra.append({
            "account_no": txn["account_no"], "txn_id": wo.txn_id, "customer_id": customer_id,
            "order_id": wo.order_id, "allocated_cents": int(wo.amount_cents),
            "match_method": "manual", "match_score": 100, "match_status": "confirmed",
            "evidence": json.dumps({"writeoff_id": wo.writeoff_id, "confirmed_by": wo.confirmed_by},
                                   ensure_ascii=False),
        })
        # The credit is no longer unmatched once finance wrote it off against an order.
        links = links[~((links["txn_id"] == wo.txn_id) & links["order_id"].isna())]
    if extra:
        links = pd.concat([links, pd.DataFrame(extra, columns=LINK_COLUMNS)], ignore_index=True)
    return links.reset_index(drop=True)
