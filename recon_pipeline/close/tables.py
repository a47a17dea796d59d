"""The close's tables in schema `mart` (Python-owned, kept across runs; CONTRACT.md section 5 names the first three).

- `period_close`: one row per salesperson and closed period version (the frozen figures);
- `period_close_orders`: one row per order counted in a closed period version;
- `period_adjustments`: changes to a closed period, booked in a later open period;
- `period_close_excluded_orders`: the salesperson's signed orders that did not count, frozen
  with the reason in words (the statement's "what did not count");
- `period_close_log`: every close and reopen, with who, when and why;
- `period_close_reconciliation`: per closed period and salesperson, frozen + adjustments vs live
  (rebuilt every run).
Closes and reopens are user actions: these tables are not derived from the landing zone, so a
rebuild of the warehouse must keep them (back them up with the warehouse).
"""

from __future__ import annotations

import duckdb
import pandas as pd

ORDER_SNAPSHOT_COLUMNS = """
  contract_no VARCHAR,
  customer_id VARCHAR,
  customer_name VARCHAR,
  contract_amount DECIMAL(18,2),
  invoiced_amount DECIMAL(18,2),
  received_amount DECIMAL(18,2),
  written_off_amount DECIMAL(18,2),
  sales_leg_closed_at TIMESTAMP,
  legal_leg_closed_at TIMESTAMP,
  finance_leg_closed_at TIMESTAMP,
  order_closed_at TIMESTAMP,
  recognized_period_at_close VARCHAR,
  crm_status VARCHAR
"""

DDL = {
    "period_close_log": """
CREATE TABLE IF NOT EXISTS mart.period_close_log (
  period VARCHAR NOT NULL,
  version INTEGER NOT NULL,
  action VARCHAR NOT NULL,          -- 'close' / 'reopen'
  action_at TIMESTAMP NOT NULL,     -- when the person did it (wall clock; the run's as-of for automatic closes)
  action_by VARCHAR NOT NULL,
  reason VARCHAR,
  as_of TIMESTAMP NOT NULL,         -- the last run's as-of the close froze (or that was current at the reopen)
  trigger VARCHAR NOT NULL,         -- 'manual' / 'auto' / 'dagster'
  PRIMARY KEY (period, version, action)
)""",
    "period_close": """
CREATE TABLE IF NOT EXISTS mart.period_close (
  period VARCHAR NOT NULL,
  version INTEGER NOT NULL,
  salesperson_id VARCHAR NOT NULL,
  signed_amount DECIMAL(18,2) NOT NULL,
  recognized_amount DECIMAL(18,2) NOT NULL,
  collected_amount DECIMAL(18,2) NOT NULL,
  as_of TIMESTAMP NOT NULL,
  closed_at TIMESTAMP NOT NULL,
  closed_by VARCHAR NOT NULL,
  salesperson_name VARCHAR,
  counted_orders INTEGER NOT NULL,
  PRIMARY KEY (period, version, salesperson_id)
)""",
    "period_close_orders": f"""
CREATE TABLE IF NOT EXISTS mart.period_close_orders (
  period VARCHAR NOT NULL,
  version INTEGER NOT NULL,
  order_id VARCHAR NOT NULL,
  salesperson_id VARCHAR NOT NULL,
  recognized_amount DECIMAL(18,2) NOT NULL,
  {ORDER_SNAPSHOT_COLUMNS},
  PRIMARY KEY (period, version, order_id)
)""",
    "period_close_excluded_orders": f"""
CREATE TABLE IF NOT EXISTS mart.period_close_excluded_orders (
  period VARCHAR NOT NULL,
  version INTEGER NOT NULL,
  order_id VARCHAR NOT NULL,
  salesperson_id VARCHAR NOT NULL,
  reason VARCHAR NOT NULL,          -- what is missing, in words, at the close
  {ORDER_SNAPSHOT_COLUMNS},
  PRIMARY KEY (period, version, order_id)
)""",
    "period_adjustments": """
CREATE TABLE IF NOT EXISTS mart.period_adjustments (
  adjustment_id VARCHAR NOT NULL PRIMARY KEY,
  original_period VARCHAR NOT NULL,
  booked_period VARCHAR NOT NULL,
  order_id VARCHAR NOT NULL,
  salesperson_id VARCHAR NOT NULL,
  amount DECIMAL(18,2) NOT NULL,    -- recognized amount; negative when the closed period was overstated
  reason VARCHAR NOT NULL,
  as_of TIMESTAMP NOT NULL,
  original_version INTEGER NOT NULL,
  adjustment_type VARCHAR NOT NULL,
  contract_no VARCHAR,
  customer_name VARCHAR,
  current_recognized_period VARCHAR -- where the order counts now (null: nowhere yet)
)""",
    "period_close_reconciliation": """
CREATE TABLE IF NOT EXISTS mart.period_close_reconciliation (
  period VARCHAR NOT NULL,
  version INTEGER NOT NULL,
  salesperson_id VARCHAR NOT NULL,
  closed_recognized_amount DECIMAL(18,2) NOT NULL,
  adjustments_amount DECIMAL(18,2) NOT NULL,
  live_recognized_amount DECIMAL(18,2) NOT NULL,
  unexplained_amount DECIMAL(18,2) NOT NULL,   -- live - closed - adjustments: always 0
  closed_signed_amount DECIMAL(18,2) NOT NULL,
  live_signed_amount DECIMAL(18,2) NOT NULL,
  closed_collected_amount DECIMAL(18,2) NOT NULL,
  live_collected_amount DECIMAL(18,2) NOT NULL,
  as_of TIMESTAMP NOT NULL,
  PRIMARY KEY (period, version, salesperson_id)
)""",
}


def ensure_close_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the close tables if missing (idempotent)."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
    for ddl in DDL.values():
        conn.execute(ddl)


# Snapshot columns as stored (DECIMAL money) -> as the close's Python reads them (cents, live names).
SNAPSHOT_READ = {
    "contract_no": "contract_no",
    "customer_id": "customer_id",
    "customer_name": "customer_name",
    "contract_cents": "CAST(contract_amount * 100 AS BIGINT)",
    "invoiced_cents": "CAST(invoiced_amount * 100 AS BIGINT)",
    "received_cents": "CAST(received_amount * 100 AS BIGINT)",
    "written_off_cents": "CAST(written_off_amount * 100 AS BIGINT)",
    "sales_leg_closed_at": "sales_leg_closed_at",
    "legal_leg_closed_at": "legal_leg_closed_at",
    "finance_leg_closed_at": "finance_leg_closed_at",
    "order_closed_at": "order_closed_at",
    "is_closed": "order_closed_at IS NOT NULL",
    "recognized_period": "recognized_period_at_close",
    "crm_status": "crm_status",
}


def read_frozen_orders(conn: duckdb.DuckDBPyConnection, table: str, closes: list[tuple[str, int]]) -> pd.DataFrame:
    """Rows of period_close_orders / period_close_excluded_orders of the given (period, version)s, in cents."""
    value = ("CAST(recognized_amount * 100 AS BIGINT) AS recognized_cents" if table == "period_close_orders"
             else "reason")
    select = ", ".join(f"{expression} AS {name}" for name, expression in SNAPSHOT_READ.items())
    wanted = pd.DataFrame(closes, columns=["period", "version"]).astype({"version": "int64"})
    conn.register("close_versions_wanted", wanted)
    try:
        return conn.execute(
            f"""
            SELECT t.period, t.version, t.order_id, t.salesperson_id, {value}, {select}
            FROM mart.{table} t JOIN close_versions_wanted w ON t.period = w.period AND t.version = w.version
            ORDER BY t.period, t.version, t.order_id
            """
        ).df()
    finally:
        conn.unregister("close_versions_wanted")


def read_ledger(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart.period_adjustments in cents, in a stable order."""
    return conn.execute(
        """
        SELECT adjustment_id, original_period, booked_period, order_id, salesperson_id,
               CAST(amount * 100 AS BIGINT) AS amount_cents, reason, as_of, original_version, adjustment_type,
               contract_no, customer_name, current_recognized_period
        FROM mart.period_adjustments ORDER BY booked_period, original_period, order_id, salesperson_id
        """
    ).df()


def read_closed_figures(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart.period_close in cents."""
    return conn.execute(
        """
        SELECT period, version, salesperson_id, salesperson_name,
               CAST(signed_amount * 100 AS BIGINT) AS signed_cents,
               CAST(recognized_amount * 100 AS BIGINT) AS recognized_cents,
               CAST(collected_amount * 100 AS BIGINT) AS collected_cents,
               as_of, closed_at, closed_by, counted_orders
        FROM mart.period_close ORDER BY period, version, salesperson_id
        """
    ).df()
