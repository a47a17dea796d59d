"""The DuckDB warehouse: connections and the tables the Python side owns.

DuckDB takes one writing process at a time: every step that writes opens the file, does its
work and closes it (`connect` is a context manager), and the pipeline runs those steps one
after another.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from recon_pipeline.sources import SOURCES, SourceSpec

SQL_TYPES = {
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "decimal": "DECIMAL(18,2)",
    "timestamp": "TIMESTAMP",
    "date": "DATE",
}


@contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    # No progress bar: `recon run` prints its own stages, and cron logs stay clean.
    conn = duckdb.connect(str(path), read_only=read_only)
    try:
        conn.execute("SET enable_progress_bar = false")
        yield conn
    finally:
        conn.close()


def raw_table_ddl(spec: SourceSpec) -> str:
    columns = [f"{c.name} {SQL_TYPES[c.type]}" for c in spec.columns]
    columns += [
        "_drop_date DATE NOT NULL",
        "_source_file VARCHAR NOT NULL",
        "_row_number INTEGER NOT NULL",
        "_extra_columns VARCHAR",
    ]
    return f"CREATE TABLE IF NOT EXISTS raw.{spec.name} (\n  " + ",\n  ".join(columns) + "\n)"


RECEIPT_LINKS_DDL = """
CREATE TABLE IF NOT EXISTS matching.receipt_links (
  account_no VARCHAR NOT NULL,
  txn_id VARCHAR NOT NULL,
  customer_id VARCHAR,
  order_id VARCHAR,
  allocated_amount DECIMAL(18,2) NOT NULL,
  match_method VARCHAR NOT NULL,
  match_score INTEGER NOT NULL,
  match_status VARCHAR NOT NULL,
  evidence VARCHAR
)
"""

QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS raw.quarantine (
  source VARCHAR NOT NULL,
  _drop_date DATE NOT NULL,
  _source_file VARCHAR NOT NULL,
  _row_number INTEGER,
  reason VARCHAR NOT NULL,
  raw_record VARCHAR
)
"""

INGEST_LOG_DDL = """
CREATE TABLE IF NOT EXISTS raw.ingest_log (
  source VARCHAR NOT NULL,
  _drop_date DATE NOT NULL,
  files VARCHAR NOT NULL,
  fingerprint VARCHAR NOT NULL,
  rows_loaded BIGINT NOT NULL,
  rows_quarantined BIGINT NOT NULL,
  PRIMARY KEY (source, _drop_date)
)
"""


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the Python-owned schemas and tables if missing (idempotent)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS raw")
    conn.execute("CREATE SCHEMA IF NOT EXISTS matching")
    for spec in SOURCES.values():
        conn.execute(raw_table_ddl(spec))
    conn.execute(QUARANTINE_DDL)
    conn.execute(INGEST_LOG_DDL)
    conn.execute(RECEIPT_LINKS_DDL)
