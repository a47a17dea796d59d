"""Search from every page: an order ID however it is written (`25sz300`, `25-SZ-00300`,
`订单25SZ00300`), a contract number, an invoice, legal archive or write-off number, a customer's
name, alias, credit code or a payer name finance confirmed for it, a salesperson, a bank
transaction id or payer, an amount (`12345.67`, `¥12,345.67`, `1.2万`, `6.264万`).

Order IDs are read with the matching engine's memo parser (matching/memo.py), so the search
understands exactly the forms the engine does. Every group is limited and scoped to what the
user may see.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Callable

from recon_pipeline.dashboard.access import Scope
from recon_pipeline.dashboard.lists import stage_sql
from recon_pipeline.dashboard.queries import MartReader, signed_at_sql
from recon_pipeline.matching.memo import order_ids_in_memo

ORDERS = "mart.fct_order_reconciliation"
MATCHES = "mart.fct_receipt_matches"
LIMIT = 20
_AMOUNT = re.compile(r"^[¥￥]?\s*(?P<number>[0-9][0-9,]*(\.(?P<decimals>[0-9]+))?)\s*(?P<wan>万)?\s*元?$")
# A document number typed into the search box finds its order (exact, case-insensitive).
DOCUMENTS = (("mart.fct_invoices", "invoice_no"), ("mart.fct_legal_archive", "archive_no"),
             ("mart.fct_writeoffs", "writeoff_id"))


@dataclass
class SearchResult:
    text: str
    order_ids: list[str] = field(default_factory=list)  # canonical IDs read from the text
    amount: Decimal | None = None
    orders: list[dict] = field(default_factory=list)
    customers: list[dict] = field(default_factory=list)
    salespeople: list[dict] = field(default_factory=list)
    receipts: list[dict] = field(default_factory=list)
    payer_names: dict[str, list[str]] = field(default_factory=dict)  # customer -> confirmed payer names found

    @property
    def empty(self) -> bool:
        return not (self.orders or self.customers or self.salespeople or self.receipts)


def parse_amount(text: str) -> Decimal | None:
    match = _AMOUNT.match(text.replace(" ", ""))
    # Cents at most: two decimals of yuan, six of 万 (6.264万 = 62,640.00).
    if not match or len(match["decimals"] or "") > (6 if match["wan"] else 2):
        return None
    try:
        value = Decimal(match["number"].replace(",", ""))
    except InvalidOperation:
        return None
    return (value * 10000 if match["wan"] else value).quantize(Decimal("0.01"))


def normalized(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()[:100]


def learned_payer_names(reader: MartReader) -> list[tuple[str, str]]:
    """(customer, payer name) pairs finance confirmed where the payer's name is not the
    customer's registered one: the aliases the matching engine learned. Distinct pairs of the
    whole bank, so the caller computes them once per publication."""
    if not (reader.has(MATCHES) and reader.has_column(MATCHES, "counterparty_name")):
        return []
    registered = ("LEFT JOIN mart.dim_customers c ON c.customer_id = m.customer_id" if reader.has("mart.dim_customers")
                  else "LEFT JOIN (SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS customer_name) c ON FALSE")
    return [tuple(row) for row in reader.conn.execute(
        f"""SELECT DISTINCT m.customer_id, m.counterparty_name FROM {MATCHES} m {registered}
            WHERE m.match_status = 'confirmed' AND m.customer_id IS NOT NULL AND m.counterparty_name IS NOT NULL
              AND m.counterparty_name IS DISTINCT FROM c.customer_name
            ORDER BY 1, 2"""
    ).fetchall()]


def search(
    reader: MartReader, raw_text: str, scope: Scope, tolerance: Decimal = Decimal("0.00"),
    payer_names: Callable[[], list[tuple[str, str]]] | None = None,
) -> SearchResult:
    """`payer_names` gives learned_payer_names() of this publication (the caller remembers
    them; called only when the text is a name)."""
    text = normalized(raw_text)
    result = SearchResult(text=text)
    if not text:
        return result
    result.order_ids = order_ids_in_memo(text)
    result.amount = parse_amount(text)
    like = f"%{text}%"
    if reader.has(ORDERS):
        result.orders = _orders(reader, text, like, result, scope, tolerance)
    if len(text) >= 2 and not result.order_ids and result.amount is None:
        folded = text.casefold()
        for customer_id, name in (payer_names or (lambda: learned_payer_names(reader)))():
            if folded in name.casefold():
                result.payer_names.setdefault(customer_id, []).append(name)
    result.customers = _customers(reader, text, like, scope, list(result.payer_names))
    result.salespeople = _salespeople(reader, like, scope)
    if reader.has(MATCHES):
        # Payer names are searched only for words: an order ID or an amount is looked up as such
        # (scanning every payer name of a 1M-line bank for "25sz300" finds nothing and costs most).
        by_name = not result.order_ids and result.amount is None
        result.receipts = _receipts(reader, text, like, result.amount, scope, tolerance, by_name)
    return result


def _orders(reader, text, like, result, scope, tolerance) -> list[dict]:
    hits, params = ["o.order_id = ANY(?::VARCHAR[])", "upper(o.order_id) = upper(?)"], [result.order_ids, text]
    if len(text) >= 4:
        hits.append("o.order_id ILIKE ?")
        params.append(like)
    for optional in ("contract_no", "customer_name"):
        if reader.has_column(ORDERS, optional) and len(text) >= 2:
            hits.append(f"o.{optional} ILIKE ?")
            params.append(like)
    for table, number in DOCUMENTS:
        if reader.has_column(table, number) and len(text) >= 4:
            hits.append(f"o.order_id IN (SELECT order_id FROM {table} WHERE upper({number}) = upper(?))")
            params.append(text)
    if result.amount is not None:
        hits.append("(abs(o.contract_amount - ?) <= ? OR abs(o.outstanding_amount - ?) <= ?)")
        params += [result.amount, tolerance, result.amount, tolerance]
    scope_sql, scope_params = scope.sql("o.salesperson_id")
    exact = "o.order_id = ANY(?::VARCHAR[]) OR upper(o.order_id) = upper(?)"
    return reader.rows(
        f"""SELECT o.order_id, {reader.column(ORDERS, 'contract_no', prefix='o')}, o.customer_id,
                   {reader.column(ORDERS, 'customer_name', prefix='o')}, o.salesperson_id,
                   {reader.column(ORDERS, 'salesperson_name', prefix='o')}, o.contract_amount, o.outstanding_amount,
                   {stage_sql(reader)} AS stage, {signed_at_sql(reader)} AS signed_at,
                   CASE WHEN {exact} THEN 0 ELSE 1 END AS rank
            FROM {ORDERS} o WHERE ({' OR '.join(hits)}) AND {scope_sql}
            ORDER BY rank, signed_at DESC NULLS LAST, o.order_id LIMIT {LIMIT}""",
        [result.order_ids, text] + params + scope_params,
    )


def _customers(reader, text, like, scope, by_payer_name: list[str]) -> list[dict]:
    table = "mart.dim_customers" if reader.has("mart.dim_customers") else (
        "mart.customer_collection_health" if reader.has("mart.customer_collection_health") else None)
    if table is None or len(text) < 2:
        return []
    hits, params = ["c.customer_name ILIKE ?", "c.customer_id = ?", "c.customer_id = ANY(?::VARCHAR[])"], [like, text, by_payer_name]
    for optional, exact in (("aliases", False), ("credit_code", True)):
        if reader.has_column(table, optional):
            hits.append(f"upper(c.{optional}) = upper(?)" if exact else f"c.{optional} ILIKE ?")
            params.append(text if exact else like)
    scope_sql, scope_params = scope.customer_sql("c.customer_id", reader.has("mart.dim_customers"))
    return reader.rows(
        f"""SELECT c.customer_id, c.customer_name, {reader.column(table, 'aliases', prefix='c')},
                   {reader.column(table, 'owner_salesperson_name', prefix='c')}
            FROM {table} c WHERE ({' OR '.join(hits)}) AND {scope_sql}
            ORDER BY length(c.customer_name), c.customer_id LIMIT {LIMIT}""",
        params + scope_params,
    )


def _salespeople(reader, like, scope) -> list[dict]:
    if not reader.has("mart.dim_salespeople"):
        return []
    scope_sql, scope_params = scope.sql("s.salesperson_id")
    return reader.rows(
        f"""SELECT s.salesperson_id, s.salesperson_name, s.region_code FROM mart.dim_salespeople s
            WHERE (s.salesperson_name ILIKE ? OR s.salesperson_id ILIKE ? OR s.email ILIKE ?) AND {scope_sql}
            ORDER BY s.salesperson_id LIMIT {LIMIT}""",
        [like, like, like] + scope_params,
    )


def _receipts(reader, text, like, amount, scope, tolerance, by_name: bool = True) -> list[dict]:
    hits, params = ["m.txn_id = ?"], [text]
    if len(text) >= 6 and by_name:
        hits.append("m.txn_id ILIKE ?")
        params.append(like)
    if reader.has_column(MATCHES, "counterparty_name") and len(text) >= 2 and by_name:
        # Lines already linked are reached through their customer; the payer's name finds the
        # ones waiting for someone (and keeps the scan to a few percent of a large bank).
        hits.append("(m.match_status IN ('unmatched', 'suggested') AND m.counterparty_name ILIKE ?)")
        params.append(like)
    if amount is not None and reader.has_column(MATCHES, "amount"):
        hits.append("abs(m.amount - ?) <= ?")
        params += [amount, tolerance]
    scope_clause, scope_params = "TRUE", []
    if not scope.everything:
        owner = "m.salesperson_id" if reader.has_column(MATCHES, "salesperson_id") else "NULL"
        scope_clause, scope_params = scope.sql(owner)
    return reader.rows(
        f"""SELECT m.account_no, m.txn_id, {reader.column(MATCHES, 'txn_time', prefix='m')},
                   {reader.column(MATCHES, 'amount', prefix='m')}, {reader.column(MATCHES, 'counterparty_name', prefix='m')},
                   m.customer_id, m.order_id, m.allocated_amount, m.match_method, m.match_status,
                   CASE WHEN m.txn_id = ? THEN 0 ELSE 1 END AS rank
            FROM {MATCHES} m WHERE ({' OR '.join(hits)}) AND {scope_clause}
            ORDER BY rank, txn_time DESC NULLS LAST, m.txn_id LIMIT {LIMIT}""",
        [text] + params + scope_params,
    )
