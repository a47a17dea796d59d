"""The matching seam: read the current state from staging, write `matching.receipt_links`."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Iterator

import duckdb
import pandas as pd

from recon_pipeline.faults import crash_point
from recon_pipeline.matching.engine import build_receipt_links
from recon_pipeline.matching.incremental import Engine, refresh_links
from recon_pipeline.matching.inputs import LINK_COLUMNS, MatchingInputs
from recon_pipeline.run_state import code_fingerprint
from recon_pipeline.settings import Settings
from recon_pipeline.warehouse import ensure_schema, registered

# Amounts leave the warehouse as int64 cents: exact arithmetic without floats. Each input is
# (SELECT, ORDER BY); the SQL runs on DuckDB and on Spark alike.
INPUT_SELECTS = {
    "bank": ("""
        SELECT account_no, txn_id, txn_time, CAST(amount * 100 AS BIGINT) AS amount_cents, currency,
               counterparty_name, counterparty_account, memo
        FROM staging.stg_bank_transactions""", "txn_time, account_no, txn_id"),
    "customers": ("""
        SELECT customer_id, customer_name, credit_code, aliases, region_code, industry
        FROM staging.stg_customers""", "customer_id"),
    "contracts": ("""
        SELECT order_id, contract_no, customer_id, customer_name, salesperson_id,
               CAST(amount * 100 AS BIGINT) AS amount_cents, status, signed_at
        FROM staging.stg_crm_contracts""", "order_id"),
    "invoices": ("""
        SELECT invoice_no, order_id, customer_name, invoice_date,
               CAST(total_amount * 100 AS BIGINT) AS total_amount_cents, invoice_type, status
        FROM staging.stg_erp_invoices""", "invoice_no"),
    "writeoffs": ("""
        SELECT writeoff_id, txn_id, order_id, invoice_no, CAST(amount * 100 AS BIGINT) AS amount_cents,
               confirmed_by, confirmed_at, status
        FROM staging.stg_finance_writeoffs""", "writeoff_id"),
    "feedback": ("""
        SELECT feedback_id, account_no, txn_id, customer_id, order_id, decision, decided_by, decided_at, comment,
               _drop_date, _source_file, _row_number
        FROM staging.stg_match_feedback""", "feedback_id"),
}


def input_query(name: str) -> str:
    select, order_by = INPUT_SELECTS[name]
    return f"{select} ORDER BY {order_by}"


def read_matching_inputs(conn: duckdb.DuckDBPyConnection, as_of: datetime) -> MatchingInputs:
    frames = {name: conn.execute(input_query(name)).df() for name in INPUT_SELECTS}
    return MatchingInputs(as_of=as_of, **frames)


def write_receipt_links(conn: duckdb.DuckDBPyConnection, links: pd.DataFrame) -> int:
    """Replace the seam table with these links (sorted, so reruns write the same rows)."""
    ensure_schema(conn)
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.execute("DELETE FROM matching.receipt_links")
        written = replace_line_links(conn, set(), links)
        crash_point("matching:write")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return written


def replace_line_links(conn: duckdb.DuckDBPyConnection, lines: set[tuple[str, str]], links: pd.DataFrame) -> int:
    """Replace the rows of these bank lines only (an incremental run); the others stay.

    DuckDB reads the frame's columns in place and sorts them itself: no sorted pandas copy."""
    keys = pd.DataFrame(sorted(lines), columns=["account_no", "txn_id"]) if lines else \
        pd.DataFrame({"account_no": pd.Series(dtype="str"), "txn_id": pd.Series(dtype="str")})
    frame = links[LINK_COLUMNS] if list(links.columns) != LINK_COLUMNS else links
    with registered(conn, {"_keys": keys, "_links": frame}):
        conn.execute("""DELETE FROM matching.receipt_links AS links USING _keys
                        WHERE links.account_no = _keys.account_no AND links.txn_id = _keys.txn_id""")
        if len(frame):
            conn.execute(
                """INSERT INTO matching.receipt_links
                   SELECT account_no, txn_id, customer_id, order_id,
                          CAST(CAST(allocated_cents AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2)),
                          match_method, CAST(match_score AS INTEGER), match_status, evidence
                   FROM _links
                   ORDER BY account_no, txn_id, order_id NULLS LAST"""
            )
    return len(frame)


@dataclass
class MatchingRun:
    full: bool  # every line evaluated (no usable previous state, a context change, --full-refresh)
    evaluated_lines: int
    rows_written: int
    status_counts: dict[str, int]


@contextmanager
def cyclic_collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for the block, one collection after it.

    Matching builds millions of long-lived objects (customer index, order book, links), and each
    automatic full collection walks all of them again: 17% of a 100k full matching's CPU time
    (14.6 -> 12.1 CPU-s, mean of three runs each). Those structures hold no reference cycles, so
    reference counting frees them when the run returns; the one collection is for whatever
    cycles a library leaves (tests/matching/test_seam.py checks that none holds the context)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.collect()


def refresh_receipt_links(conn: duckdb.DuckDBPyConnection, as_of: datetime, settings: Settings,
                          full_refresh: bool = False, engine: Engine = build_receipt_links) -> MatchingRun:
    """Bring `matching.receipt_links` up to date with the staging models: incrementally when a
    previous run's state allows (see `matching.incremental`), else by a full evaluation."""
    ensure_schema(conn)
    inputs = read_matching_inputs(conn, as_of)
    conn.execute("BEGIN TRANSACTION")
    try:
        with cyclic_collector_paused():
            result = refresh_links(conn, inputs, settings, code_fingerprint(), full_refresh, engine)
        del inputs
        if result.full:
            conn.execute("DELETE FROM matching.receipt_links")
        written = replace_line_links(conn, result.evaluated or set(), result.links)
        evaluated = result.lines if result.full else len(result.evaluated)
        crash_point("matching:write")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    counts = dict(conn.execute(
        "SELECT match_status, count(*) FROM matching.receipt_links GROUP BY 1 ORDER BY 1").fetchall())
    return MatchingRun(result.full, evaluated, written, counts)


def link_metrics(conn: duckdb.DuckDBPyConnection) -> dict:
    """Counts of the stored links: rows, by status and method, suggestions, the credits' auto-link rate."""
    by_status = dict(conn.execute("SELECT match_status, count(*) FROM matching.receipt_links GROUP BY 1 ORDER BY 1").fetchall())
    by_method = dict(conn.execute("SELECT match_method, count(*) FROM matching.receipt_links GROUP BY 1 ORDER BY 1").fetchall())
    credits, linked = conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE linked) FROM (
               SELECT account_no, txn_id, bool_or(match_status IN ('auto_linked', 'confirmed')) AS linked
               FROM matching.receipt_links WHERE allocated_amount > 0 GROUP BY 1, 2)""").fetchone()
    return {
        "rows": int(sum(by_status.values())),
        "by_status": {k: int(v) for k, v in by_status.items()},
        "by_method": {k: int(v) for k, v in by_method.items()},
        "suggestions": int(by_status.get("suggested", 0)),
        "auto_link_rate": round(linked / credits, 4) if credits else 0.0,
    }
