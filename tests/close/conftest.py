"""A small warehouse for the close tests: the two marts the close reads, written with plain SQL.

Orders and their legs are given by hand (no dbt, no matching), so each test can move one
order's legs between "runs" with `set_order` and see exactly what the close does.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.as_of import cutoff_period

ORDERS_DDL = """
CREATE TABLE mart.fct_order_reconciliation (
  order_id VARCHAR, customer_id VARCHAR, salesperson_id VARCHAR, region_code VARCHAR, industry VARCHAR,
  contract_amount DECIMAL(18,2), invoiced_amount DECIMAL(18,2), received_amount DECIMAL(18,2),
  written_off_amount DECIMAL(18,2), outstanding_amount DECIMAL(18,2),
  sales_leg_closed_at TIMESTAMP, legal_leg_closed_at TIMESTAMP, finance_leg_closed_at TIMESTAMP,
  is_closed BOOLEAN, recognized_period VARCHAR, status VARCHAR,
  contract_no VARCHAR, customer_name VARCHAR, salesperson_name VARCHAR, crm_status VARCHAR,
  closed_at TIMESTAMP, invoices_covered_at TIMESTAMP, receipts_covered_at TIMESTAMP, as_of TIMESTAMP
)"""

SUMMARY_VIEW = """
CREATE OR REPLACE TABLE mart.salesperson_period_summary AS
WITH months AS (
  SELECT strftime(m, '%Y-%m') AS period FROM range(DATE '2025-01-01', DATE '2025-07-01', INTERVAL 1 MONTH) t(m)
), people AS (SELECT DISTINCT salesperson_id FROM mart.fct_order_reconciliation WHERE salesperson_id IS NOT NULL)
SELECT p.salesperson_id, m.period,
  CAST(coalesce((SELECT sum(contract_amount) FROM mart.fct_order_reconciliation o
         WHERE o.salesperson_id = p.salesperson_id AND strftime(o.sales_leg_closed_at, '%Y-%m') = m.period), 0) AS DECIMAL(18,2)) AS signed_amount,
  CAST(coalesce((SELECT sum(contract_amount) FROM mart.fct_order_reconciliation o
         WHERE o.salesperson_id = p.salesperson_id AND o.is_closed AND o.recognized_period = m.period), 0) AS DECIMAL(18,2)) AS recognized_amount,
  CAST(coalesce((SELECT sum(received_amount) FROM mart.fct_order_reconciliation o
         WHERE o.salesperson_id = p.salesperson_id AND o.recognized_period = m.period), 0) AS DECIMAL(18,2)) AS collected_amount,
  NULL::DOUBLE AS discrepancy_rate, false AS needs_review, $as_of::TIMESTAMP AS as_of
FROM people p, months m WHERE m.period <= $last_period
"""

# order, salesperson, contract, sales leg, legal leg, finance leg (the order closes at the last leg)
BASE_ORDERS = [
    ("25SH00001", "S01", 100000, "2025-01-10 11:00", "2025-01-20 09:00", "2025-02-05 10:00"),  # Feb
    ("25SH00002", "S01", 50000, "2025-02-03 15:00", "2025-02-10 09:00", "2025-02-25 10:00"),   # Feb
    ("25BJ00003", "S02", 80000, "2025-02-10 10:00", None, "2025-02-20 10:00"),                 # open: no archive
    ("25BJ00004", "S02", 120000, "2025-02-14 16:30", "2025-02-20 09:00", "2025-02-27 14:00"),  # Feb
    ("25GZ00005", "S03", 30000, "2025-01-05 09:00", "2025-01-20 09:00", "2025-01-25 10:00"),   # Jan
]


class CloseWarehouse:
    """The fixture warehouse: orders with legs; `run(as_of)` rebuilds the marts as a run would."""

    def __init__(self, path: Path):
        self.path = path
        self.orders = {o[0]: self._order(*o) for o in BASE_ORDERS}

    @staticmethod
    def _order(order_id, salesperson_id, amount, sales, legal, finance):
        return {"order_id": order_id, "salesperson_id": salesperson_id, "contract_amount": amount,
                "invoiced_amount": amount if finance else 0, "received_amount": amount if finance else 0,
                "written_off_amount": amount if finance else 0, "sales": sales, "legal": legal, "finance": finance,
                "invoiced_at": finance, "crm_status": "signed" if sales else "draft"}

    def set_order(self, order_id: str, **changes) -> None:
        if order_id not in self.orders:
            self.orders[order_id] = self._order(order_id, changes.pop("salesperson_id"), changes.pop("contract_amount"),
                                                None, None, None)
        self.orders[order_id].update(changes)

    def run(self, as_of: str) -> datetime:
        moment = datetime.fromisoformat(as_of)
        conn = duckdb.connect(str(self.path))
        try:
            conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
            conn.execute("DROP TABLE IF EXISTS mart.fct_order_reconciliation")
            conn.execute(ORDERS_DDL)
            for o in self.orders.values():
                legs = [datetime.fromisoformat(t) if t else None for t in (o["sales"], o["legal"], o["finance"])]
                legs = [t if t and t <= moment else None for t in legs]
                invoiced_at = datetime.fromisoformat(o["invoiced_at"]) if o["invoiced_at"] else None
                invoices_covered = invoiced_at if invoiced_at and invoiced_at <= moment and \
                    o["invoiced_amount"] >= o["contract_amount"] else None
                receipts_covered = legs[2] if o["received_amount"] >= o["contract_amount"] else None
                if o["crm_status"] != "signed":
                    legs[0] = None
                closed = max(legs) if all(legs) else None
                period = cutoff_period(closed, 16) if closed else None
                status = "cancelled" if o["crm_status"] == "cancelled" else ("closed" if closed else "open")
                conn.execute(
                    "INSERT INTO mart.fct_order_reconciliation VALUES (?, 'C1', ?, 'SH', '制造业', ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, "
                    "?, '客户' || ?, '销售' || ?, ?, ?, ?, ?, ?)",
                    [o["order_id"], o["salesperson_id"], o["contract_amount"], o["invoiced_amount"], o["received_amount"],
                     o["written_off_amount"], *legs, closed is not None, period, status, "HT-" + o["order_id"],
                     o["order_id"], o["salesperson_id"], o["crm_status"], closed, invoices_covered, receipts_covered, moment],
                )
            conn.execute(SUMMARY_VIEW, {"as_of": moment, "last_period": cutoff_period(moment, 16)})
        finally:
            conn.close()
        return moment

    def connect(self):
        return duckdb.connect(str(self.path))


@pytest.fixture()
def close_warehouse(tmp_path) -> CloseWarehouse:
    return CloseWarehouse(tmp_path / "close.duckdb")


class FixedClock:
    """The injected wall clock: `closed_at` is whatever the test set."""

    def __init__(self, start: str = "2025-03-04 18:00:00"):
        self.moment = datetime.fromisoformat(start)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture()
def clock() -> FixedClock:
    return FixedClock()

