"""The matching seam: read the current state from staging, write `matching.receipt_links`."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from recon_pipeline.matching.engine import build_receipt_links
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs
from recon_pipeline.settings import Settings
from recon_pipeline.warehouse import ensure_schema
from recon_pipeline.faults import crash_point

# Amounts leave the warehouse as int64 cents: exact arithmetic without floats.
_INPUT_QUERIES = {
    "bank": """
        SELECT account_no, txn_id, txn_time, CAST(amount * 100 AS BIGINT) AS amount_cents, currency,
               counterparty_name, counterparty_account, memo
        FROM staging.stg_bank_transactions ORDER BY txn_time, account_no, txn_id""",
    "customers": """
        SELECT customer_id, customer_name, credit_code, aliases, region_code, industry
        FROM staging.stg_customers ORDER BY customer_id""",
    "contracts": """
        SELECT order_id, customer_id, customer_name, salesperson_id,
               CAST(amount * 100 AS BIGINT) AS amount_cents, status, signed_at
        FROM staging.stg_crm_contracts ORDER BY order_id""",
    "invoices": """
        SELECT invoice_no, order_id, customer_name, invoice_date,
               CAST(total_amount * 100 AS BIGINT) AS total_amount_cents, invoice_type, status
        FROM staging.stg_erp_invoices ORDER BY invoice_no""",
    "writeoffs": """
        SELECT writeoff_id, txn_id, order_id, invoice_no, CAST(amount * 100 AS BIGINT) AS amount_cents,
               confirmed_by, confirmed_at, status
        FROM staging.stg_finance_writeoffs ORDER BY writeoff_id""",
    "feedback": """
        SELECT feedback_id, account_no, txn_id, customer_id, order_id, decision, decided_by, decided_at, comment,
               _drop_date, _source_file, _row_number
        FROM staging.stg_match_feedback ORDER BY feedback_id""",
}


def read_matching_inputs(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> MatchingInputs:
    frames = {name: conn.execute(sql).df() for name, sql in _INPUT_QUERIES.items()}
    return MatchingInputs(as_of=as_of, **frames)


def write_receipt_links(conn: duckdb.DuckDBPyConnection, links: pd.DataFrame) -> int:
    """Replace the seam table with this run's links (sorted, so reruns write the same rows).

    DuckDB reads the frame's columns in place and sorts them itself: no sorted pandas copy.
    """
    ensure_schema(conn)
    frame = links[LINK_COLUMNS] if list(links.columns) != LINK_COLUMNS else links
    conn.register("_links", frame)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM matching.receipt_links")
        conn.execute(
            """INSERT INTO matching.receipt_links
               SELECT account_no, txn_id, customer_id, order_id,
                      CAST(CAST(allocated_cents AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2)),
                      match_method, CAST(match_score AS INTEGER), match_status, evidence
               FROM _links
               ORDER BY account_no, txn_id, order_id NULLS LAST"""
        )
        crash_point("matching:write")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("_links")
    return len(frame)


def refresh_receipt_links(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings) -> pd.DataFrame:
    links = build_receipt_links(read_matching_inputs(conn, as_of), settings)
    write_receipt_links(conn, links)
    return links
