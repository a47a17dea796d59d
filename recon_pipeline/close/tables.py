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

from recon_pipeline.money import sql_cents, sql_money

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


# The order snapshot a close stores: (stored column, the name the close's Python uses). Money is
# stored DECIMAL(18,2) and read as integer cents.
SNAPSHOT = [
    ("contract_no", "contract_no"),
    ("customer_id", "customer_id"),
    ("customer_name", "customer_name"),
    ("contract_amount", "contract_cents"),
    ("invoiced_amount", "invoiced_cents"),
    ("received_amount", "received_cents"),
    ("written_off_amount", "written_off_cents"),
    ("sales_leg_closed_at", "sales_leg_closed_at"),
    ("legal_leg_closed_at", "legal_leg_closed_at"),
    ("finance_leg_closed_at", "finance_leg_closed_at"),
    ("order_closed_at", "order_closed_at"),
    ("recognized_period_at_close", "recognized_period"),
    ("crm_status", "crm_status"),
]


def _is_money(stored: str) -> bool:
    return stored.endswith("_amount")


def snapshot_insert() -> tuple[str, str]:
    """(column list, SELECT expressions) that store a frame of live orders (cents) as the snapshot."""
    columns = ", ".join(stored for stored, _ in SNAPSHOT)
    values = ", ".join(sql_money(name) if _is_money(stored) else name for stored, name in SNAPSHOT)
    return columns, values


def snapshot_select() -> str:
    """The SELECT list that reads a stored snapshot back under the live names (cents)."""
    parts = [f"{sql_cents(stored) if _is_money(stored) else stored} AS {name}" for stored, name in SNAPSHOT]
    return ", ".join([*parts, "order_closed_at IS NOT NULL AS is_closed"])


def read_frozen_orders(conn: duckdb.DuckDBPyConnection, table: str, closes: list[tuple[str, int]],
                       order_ids: list[str] | None = None) -> pd.DataFrame:
    """Rows of period_close_orders / period_close_excluded_orders of the given (period, version)s, in
    cents; only the given orders when `order_ids` is given."""
    value = (f"{sql_cents('recognized_amount')} AS recognized_cents" if table == "period_close_orders"
             else "reason")
    wanted = pd.DataFrame(closes, columns=["period", "version"]).astype({"version": "int64"})
    orders = pd.DataFrame({"order_id": sorted(set(order_ids or []))}, dtype=object)
    only = "AND t.order_id IN (SELECT order_id FROM close_orders_only)" if order_ids is not None else ""
    conn.register("close_versions_wanted", wanted)
    conn.register("close_orders_only", orders)
    try:
        return conn.execute(
            f"""
            SELECT t.period, t.version, t.order_id, t.salesperson_id, {value}, {snapshot_select()}
            FROM mart.{table} t JOIN close_versions_wanted w ON t.period = w.period AND t.version = w.version
            WHERE true {only}
            ORDER BY t.period, t.version, t.order_id
            """
        ).df()
    finally:
        conn.unregister("close_versions_wanted")
        conn.unregister("close_orders_only")


def read_ledger(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart.period_adjustments in cents, in a stable order."""
    return conn.execute(
        f"""
        SELECT adjustment_id, original_period, booked_period, order_id, salesperson_id,
               {sql_cents('amount')} AS amount_cents, reason, as_of, original_version, adjustment_type,
               contract_no, customer_name, current_recognized_period
        FROM mart.period_adjustments ORDER BY booked_period, original_period, order_id, salesperson_id
        """
    ).df()


def read_closed_figures(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """mart.period_close in cents."""
    return conn.execute(
        f"""
        SELECT period, version, salesperson_id, salesperson_name, {sql_cents('signed_amount')} AS signed_cents,
               {sql_cents('recognized_amount')} AS recognized_cents, {sql_cents('collected_amount')} AS collected_cents,
               as_of, closed_at, closed_by, counted_orders
        FROM mart.period_close ORDER BY period, version, salesperson_id
        """
    ).df()
