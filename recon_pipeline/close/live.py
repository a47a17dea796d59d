"""Reads of the live mart the close works from: orders with their legs, the period summary, the facts behind a change.

Everything comes from schema `mart` (and, when present, `staging` for the write-off and invoice
ids that explain a change), so the same reads work on the working warehouse and on the
published file. Amounts leave the warehouse as integer cents.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from recon_pipeline.money import sql_cents

ORDERS = "fct_order_reconciliation"
SUMMARY = "salesperson_period_summary"

# Contract columns of mart.fct_order_reconciliation, then extras read when the mart has them.
ORDER_COLUMNS = {
    "order_id": "order_id",
    "salesperson_id": "salesperson_id",
    "customer_id": "customer_id",
    **{f"{name}_cents": sql_cents(f"{name}_amount") for name in ("contract", "invoiced", "received", "written_off")},
    "sales_leg_closed_at": "sales_leg_closed_at",
    "legal_leg_closed_at": "legal_leg_closed_at",
    "finance_leg_closed_at": "finance_leg_closed_at",
    "is_closed": "coalesce(is_closed, false)",
    "recognized_period": "recognized_period",
    "status": "status",
}
ORDER_EXTRAS = {
    "contract_no": ("contract_no", "CAST(NULL AS VARCHAR)"),
    "customer_name": ("customer_name", "CAST(NULL AS VARCHAR)"),
    "salesperson_name": ("salesperson_name", "CAST(NULL AS VARCHAR)"),
    "crm_status": ("crm_status", "CAST(NULL AS VARCHAR)"),
    "order_closed_at": ("closed_at", "CAST(NULL AS TIMESTAMP)"),
    "invoiced_covered": ("invoices_covered_at IS NOT NULL", "CAST(NULL AS BOOLEAN)"),
    "received_covered": ("receipts_covered_at IS NOT NULL", "CAST(NULL AS BOOLEAN)"),
}
EXTRA_SOURCE_COLUMNS = {
    "contract_no": "contract_no", "customer_name": "customer_name", "salesperson_name": "salesperson_name",
    "crm_status": "crm_status", "order_closed_at": "closed_at", "invoiced_covered": "invoices_covered_at",
    "received_covered": "receipts_covered_at",
}


def has_table(conn: duckdb.DuckDBPyConnection, name: str, schema: str = "mart") -> bool:
    return bool(conn.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database()",
        [schema, name],
    ).fetchall()[0][0])


def _columns(conn: duckdb.DuckDBPyConnection, name: str, schema: str = "mart") -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
        "AND table_catalog = current_database()",
        [schema, name],
    ).fetchall()
    return {row[0] for row in rows}


def order_select(conn: duckdb.DuckDBPyConnection) -> str:
    """The SELECT list that reads mart.fct_order_reconciliation into the close's order columns."""
    have = _columns(conn, ORDERS)
    parts = [f"{expression} AS {name}" for name, expression in ORDER_COLUMNS.items()]
    for name, (expression, missing) in ORDER_EXTRAS.items():
        parts.append(f"{expression if EXTRA_SOURCE_COLUMNS[name] in have else missing} AS {name}")
    return ", ".join(parts)


def read_orders(
    conn: duckdb.DuckDBPyConnection,
    salesperson_id: str | None = None,
    order_ids: list[str] | None = None,
    recognized_in: list[str] | None = None,
) -> pd.DataFrame:
    """Live orders (one row each) with amounts in cents, legs and the close's extras.

    With no filter, every order; `salesperson_id` keeps one salesperson's; `order_ids` and
    `recognized_in` (periods) together keep the orders named or recognized in those periods.
    """
    if not has_table(conn, ORDERS):
        return pd.DataFrame(columns=[*ORDER_COLUMNS, *ORDER_EXTRAS])
    where, params, registered = "true", [], False
    if salesperson_id is not None:
        where, params = "salesperson_id = ?", [salesperson_id]
    elif order_ids is not None or recognized_in is not None:
        conn.register("close_orders_wanted", pd.DataFrame({"order_id": sorted(set(order_ids or []))}, dtype=object))
        registered = True
        periods = list(recognized_in or [])
        in_periods = f"(is_closed AND recognized_period IN ({', '.join('?' for _ in periods)}))" if periods else "false"
        where, params = f"order_id IN (SELECT order_id FROM close_orders_wanted) OR {in_periods}", periods
    try:
        return conn.execute(
            f"SELECT {order_select(conn)} FROM mart.{ORDERS} WHERE {where} ORDER BY order_id", params
        ).df()
    finally:
        if registered:
            conn.unregister("close_orders_wanted")


def read_summary(conn: duckdb.DuckDBPyConnection, periods: list[str] | None = None) -> pd.DataFrame:
    """The live salesperson_period_summary (cents), optionally for some periods only."""
    columns = ["salesperson_id", "period", "signed_cents", "recognized_cents", "collected_cents"]
    if not has_table(conn, SUMMARY) or periods == []:
        return pd.DataFrame(columns=columns)
    where, params = "true", []
    if periods is not None:
        where = f"period IN ({', '.join('?' for _ in periods)})"
        params = list(periods)
    return conn.execute(
        f"""
        SELECT salesperson_id, period, {sql_cents('signed_amount')} AS signed_cents,
               {sql_cents('recognized_amount')} AS recognized_cents, {sql_cents('collected_amount')} AS collected_cents
        FROM mart.{SUMMARY} WHERE {where} ORDER BY salesperson_id, period
        """,
        params,
    ).df()


def last_run_as_of(conn: duckdb.DuckDBPyConnection) -> datetime | None:
    """The as-of of the last run that built the marts (their `as_of` column), None before any run."""
    for table in (ORDERS, SUMMARY):
        if has_table(conn, table) and "as_of" in _columns(conn, table):
            value = conn.execute(f"SELECT max(as_of) FROM mart.{table}").fetchall()[0][0]
            if value is not None:
                return pd.Timestamp(value).to_pydatetime()
    return None


def change_evidence(conn: duckdb.DuckDBPyConnection, order_ids: list[str]) -> dict[str, dict[str, list[str]]]:
    """Per order: reversed write-offs, red-letter and voided invoices (ids), from staging when it is there."""
    evidence: dict[str, dict[str, list[str]]] = {}
    if not order_ids:
        return evidence
    wanted = pd.DataFrame({"order_id": sorted(set(order_ids))})
    conn.register("close_evidence_orders", wanted)
    try:
        queries = []
        if has_table(conn, "stg_finance_writeoffs", "staging"):
            queries.append(("reversed_writeoffs", """
                SELECT w.order_id, w.writeoff_id FROM staging.stg_finance_writeoffs w
                JOIN close_evidence_orders o USING (order_id) WHERE w.status = 'reversed'"""))
        if has_table(conn, "stg_erp_invoices", "staging"):
            queries.append(("red_invoices", """
                SELECT i.order_id, i.invoice_no FROM staging.stg_erp_invoices i
                JOIN close_evidence_orders o USING (order_id)
                WHERE i.invoice_type = 'red' AND coalesce(i.status, 'issued') = 'issued'"""))
            queries.append(("voided_invoices", """
                SELECT i.order_id, i.invoice_no FROM staging.stg_erp_invoices i
                JOIN close_evidence_orders o USING (order_id) WHERE i.status = 'voided'"""))
        for kind, sql in queries:
            for order_id, item in conn.execute(sql + " ORDER BY 1, 2").fetchall():
                evidence.setdefault(str(order_id), {}).setdefault(kind, []).append(str(item))
    finally:
        conn.unregister("close_evidence_orders")
    return evidence
