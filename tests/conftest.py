"""Fixtures shared across the test tree: the packaged settings, and a small published-mart warehouse.

The mart warehouse holds the contract's `mart` tables (CONTRACT.md section 4) plus the agreed
extras, built with plain SQL, so the publication and dashboard tests do not wait for dbt or the
matching engine. EXPECTED holds the figures the pages must show, worked out by hand from the rows.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb
import pytest

from recon_pipeline.settings import load_settings

AS_OF = "2025-03-29 10:00:00"

ORDERS_DDL = """
CREATE TABLE mart.fct_order_reconciliation (
  order_id VARCHAR, customer_id VARCHAR, salesperson_id VARCHAR, region_code VARCHAR,
  industry VARCHAR, contract_amount DECIMAL(18,2), invoiced_amount DECIMAL(18,2),
  received_amount DECIMAL(18,2), written_off_amount DECIMAL(18,2), outstanding_amount DECIMAL(18,2),
  sales_leg_closed_at TIMESTAMP, legal_leg_closed_at TIMESTAMP, finance_leg_closed_at TIMESTAMP,
  is_closed BOOLEAN, recognized_period VARCHAR, status VARCHAR,
  customer_name VARCHAR, signed_at TIMESTAMP, contract_no VARCHAR
)"""

# order, customer, salesperson, region, industry, contract, invoiced, received, written off,
# outstanding, sales leg, legal leg, finance leg, closed, recognized period, status, customer
# name, signed_at, contract no
ORDERS = [
    ("25SH00001", "C001", "S01", "SH", "制造业", 100000, 100000, 100000, 100000, 0,
     "2025-01-10 11:00", "2025-01-20 09:00", "2025-02-05 10:00", True, "2025-02", "closed",
     "上海星辰制造有限公司", "2025-01-10 11:00", "HT-2025-001"),
    ("25SH00002", "C001", "S01", "SH", "制造业", 50000, 50000, 20000, 20000, 30000,
     "2025-03-03 15:00", None, None, False, None, "signed",
     "上海星辰制造有限公司", "2025-03-03 15:00", "HT-2025-002"),
    ("25BJ00003", "C002", "S02", "BJ", "零售", 80000, 0, 0, 0, 80000,
     "2025-03-10 10:00", None, None, False, None, "signed",
     "北京华联商贸有限公司", "2025-03-10 10:00", "HT-2025-003"),
    ("25BJ00004", "C002", "S02", "BJ", "零售", 120000, 120000, 120000, 0, 0,
     "2025-02-14 16:30", None, None, False, None, "signed",
     "北京华联商贸有限公司", "2025-02-14 16:30", "HT-2025-004"),
    ("25GZ00005", "C003", "S03", "GZ", "医疗", 30000, 30000, 30000, 30000, 0,
     "2024-12-01 09:00", "2024-12-20 09:00", "2025-01-15 10:00", True, "2025-01", "closed",
     "广州康健医疗器械有限公司", "2024-12-01 09:00", "HT-2024-005"),
    ("25GZ00006", "C003", "S03", "GZ", "医疗", 45000, 0, 0, 0, 45000,
     None, None, None, False, None, "draft",
     "广州康健医疗器械有限公司", None, "HT-2025-006"),
]

MATCHES_DDL = """
CREATE TABLE mart.fct_receipt_matches (
  account_no VARCHAR, txn_id VARCHAR, customer_id VARCHAR, order_id VARCHAR,
  allocated_amount DECIMAL(18,2), match_method VARCHAR, match_score INTEGER, match_status VARCHAR,
  txn_time TIMESTAMP, amount DECIMAL(18,2), counterparty_name VARCHAR, memo VARCHAR, evidence VARCHAR
)"""

# The engine's shape (matching.py); T007 has the flat shape, which the queue reads too.
EVIDENCE_T005 = (
    '{"payer": {"raw": "北京华联商贸", "normalized": "北京华联商贸", "core": "华联商贸"}, '
    '"candidates": [{"customer_id": "C002", "score": 91}, {"customer_id": "C001", "score": 70}]}'
)
EVIDENCE_T007 = (
    '{"payer_normalized": "广州康健医疗器械", "payer_core": "康健医疗器械", "candidate_customer_id": "C003", '
    '"candidate_name": "广州康健医疗器械有限公司", "candidate_core": "康健医疗器械", "score": 88}'
)

MATCHES = [
    # T001 arrives after January's cutoff (16:00 on the 31st): it counts in February.
    ("6222001", "T001", "C001", "25SH00001", 100000, "memo_order_id", 100, "auto_linked",
     "2025-01-31 17:00", 100000, "上海星辰制造有限公司", "货款 25SH00001", None),
    ("6222001", "T002", "C001", "25SH00002", 20000, "payer_account", 100, "confirmed",
     "2025-03-05 09:30", 20000, "上海星辰制造有限公司", "首付款", None),
    ("6222001", "T003", "C002", "25BJ00004", 120000, "exact_name", 100, "auto_linked",
     "2025-02-20 14:00", 120000, "北京华联商贸有限公司", "货款", None),
    ("6222001", "T004", "C003", "25GZ00005", 30000, "alias", 100, "auto_linked",
     "2025-01-10 10:00", 30000, "康健医疗", "货款", None),
    ("6222001", "T005", "C002", "25BJ00003", 80000, "fuzzy", 91, "suggested",
     "2025-03-26 11:20", 80000, "北京华联商贸", "3月货款", EVIDENCE_T005),
    ("6222001", "T006", None, None, 5000, "none", 0, "unmatched",
     "2025-03-27 15:00", 5000, "张三", "", None),
    ("6222001", "T007", "C003", None, 12345.67, "fuzzy", 88, "suggested",
     "2025-03-28 09:15", 12345.67, "广州康健医疗器械", "设备款", EVIDENCE_T007),
]

SUMMARY_DDL = """
CREATE TABLE mart.salesperson_period_summary (
  salesperson_id VARCHAR, period VARCHAR, signed_amount DECIMAL(18,2), recognized_amount DECIMAL(18,2),
  collected_amount DECIMAL(18,2), discrepancy_rate DOUBLE, needs_review BOOLEAN
)"""

SUMMARY = [
    ("S01", "2025-01", 100000, 0, 0, 1.0, False),
    ("S01", "2025-02", 0, 100000, 100000, None, False),
    ("S01", "2025-03", 50000, 0, 20000, 1.0, False),
    ("S02", "2025-02", 120000, 0, 120000, 1.0, True),
    ("S02", "2025-03", 80000, 0, 0, 1.0, True),
    ("S03", "2024-12", 30000, 0, 0, 1.0, False),
    ("S03", "2025-01", 0, 30000, 30000, None, False),
]

ALERTS_DDL = """
CREATE TABLE mart.alerts (
  alert_id VARCHAR, alert_level INTEGER, alert_type VARCHAR, entity_id VARCHAR, recipient VARCHAR,
  as_of TIMESTAMP, message VARCHAR, runbook_url VARCHAR, cc VARCHAR
)"""

ALERTS = [
    ("a1", 1, "amount_mismatch", "T003", "li.si@example.com", "流水 T003 金额 ¥120,000.00 与客户未结金额不符"),
    ("a2", 2, "receipt_not_written_off", "T003", "li.si@example.com", "流水 T003 到账已超过 72 小时仍未核销"),
    ("a3", 3, "salesperson_discrepancy", "S02", "boss@example.com", "销售 S02 连续两期差异率超过 10%"),
    ("a4", None, "cutoff_unarchived", "25SH00002", "zhang.san@example.com", "订单 25SH00002 已签约未归档，距封关 54 小时"),
    ("a5", None, "cutoff_unarchived", "25BJ00003", "li.si@example.com", "订单 25BJ00003 已签约未归档，距封关 54 小时"),
    ("a6", None, "cutoff_unarchived", "25BJ00004", "li.si@example.com", "订单 25BJ00004 已签约未归档，距封关 54 小时"),
    ("a7", None, "approval_stalled", "25GZ00006", "wang.wu@example.com", "订单 25GZ00006 审批已等待 3 小时"),
    ("a8", None, "match_rate_low", "contract_receipt_match_rate", "finance@example.com", "合同回款匹配率 80.0% 低于 95%"),
]

DIFF_DDL = "CREATE TABLE mart.diff_list (as_of_date DATE, diff_type VARCHAR, entity_id VARCHAR, amount DECIMAL(18,2))"

DIFFS = [
    ("2025-03-28", "contract_without_receipt", "25BJ00003", 80000),  # yesterday's list: not shown
    ("2025-03-29", "contract_without_receipt", "25BJ00003", 80000),
    ("2025-03-29", "receipt_without_contract", "T006", 5000),
    ("2025-03-29", "receipt_without_contract", "T007", 12345.67),
    ("2025-03-29", "archive_without_order", "AR-0099", None),
]

HEALTH_DDL = """
CREATE TABLE mart.health_metrics (
  as_of TIMESTAMP, metric VARCHAR, value DOUBLE, threshold DOUBLE, status VARCHAR
)"""

HEALTH = [
    ("2025-03-27 10:00:00", "contract_receipt_match_rate", 0.97, 0.95, "green"),
    ("2025-03-28 10:00:00", "contract_receipt_match_rate", 0.96, 0.95, "green"),
    (AS_OF, "contract_receipt_match_rate", 0.80, 0.95, "red"),
    (AS_OF, "hours_to_cutoff", 54, 72, "red"),
    (AS_OF, "unarchived_signed_contracts", 3, 0, "red"),
    (AS_OF, "stalled_approvals", 1, 0, "red"),
    (AS_OF, "avg_approval_hours", 1.5, 2, "green"),
    (AS_OF, "high_risk_customers", 1, 0, "red"),
]

CUSTOMERS_DDL = """
CREATE TABLE mart.customer_collection_health (
  customer_id VARCHAR, customer_name VARCHAR, high_risk BOOLEAN, reason VARCHAR
)"""

CUSTOMERS = [
    ("C001", "上海星辰制造有限公司", False, None),
    ("C002", "北京华联商贸有限公司", True, "回款逾期超过 30 天，且有到账金额不符"),
    ("C003", "广州康健医疗器械有限公司", False, None),
]

OPTIONAL_TABLES = ("mart.customer_collection_health", "mart.diff_list", "mart.health_metrics")

# What the pages must show for this warehouse (period 2025-03, the as-of's).
EXPECTED = {
    "signed_this_period": "¥130,000.00",      # 25SH00002 + 25BJ00003
    "recognized_this_period": "¥0.00",
    "collected_this_period": "¥20,000.00",    # T002 (confirmed); T005 is only suggested
    "collected_2025_02": "¥220,000.00",       # T001 (after Jan cutoff) + T003
    "signed_2025_02": "¥120,000.00",
    "funnel_stuck_signed": ("1", "¥80,000.00"),
    "funnel_stuck_invoiced": ("1", "¥50,000.00"),
    "funnel_stuck_received": ("1", "¥120,000.00"),
    "funnel_reached_signed": ("5", "¥380,000.00"),
    "funnel_done": ("2", "¥130,000.00"),
    "at_risk_count": "3 单",
    "at_risk_amount": "¥250,000.00",
    "hours_to_cutoff": "54.0 小时",
    "match_rate": "80.0%",
    "high_risk_customer": "北京华联商贸有限公司",
    "queue_count": "2 条",
    "diff_receipt_without_contract": "2 项",
}


def build_fixture_warehouse(path: Path, *, skip: tuple[str, ...] = (), signed_scale: int = 1) -> Path:
    """Create (or replace) a warehouse at `path` whose `mart` holds the rows above.

    `skip` leaves tables out (to test empty states); `signed_scale` multiplies the contract
    amount of 25BJ00003 (to tell one publication from the next).
    """
    path.unlink(missing_ok=True)
    conn = duckdb.connect(str(path))
    try:
        conn.execute("CREATE SCHEMA mart")
        conn.execute("CREATE SCHEMA intermediate")
        tables = [
            ("mart.fct_order_reconciliation", ORDERS_DDL, ORDERS),
            ("mart.fct_receipt_matches", MATCHES_DDL, MATCHES),
            ("mart.salesperson_period_summary", SUMMARY_DDL, SUMMARY),
            ("mart.alerts", ALERTS_DDL, [a + ("docs/runbook.md#" + a[2], "manager@example.com" if a[2] == "approval_stalled" else None) for a in _with_as_of(ALERTS)]),
            ("mart.diff_list", DIFF_DDL, DIFFS),
            ("mart.health_metrics", HEALTH_DDL, HEALTH),
            ("mart.customer_collection_health", CUSTOMERS_DDL, CUSTOMERS),
        ]
        for name, ddl, rows in tables:
            if name in skip:
                continue
            conn.execute(ddl)
            placeholders = ", ".join("?" for _ in rows[0])
            conn.executemany(f"INSERT INTO {name} VALUES ({placeholders})", [list(r) for r in rows])
        if signed_scale != 1:
            conn.execute(
                "UPDATE mart.fct_order_reconciliation SET contract_amount = contract_amount * ?, "
                "outstanding_amount = outstanding_amount * ? WHERE order_id = '25BJ00003'",
                [signed_scale, signed_scale],
            )
        # A view, as dbt may materialize some marts: it must be published as a table.
        conn.execute("CREATE TABLE intermediate.order_counts AS SELECT count(*) AS n FROM mart.fct_order_reconciliation")
        conn.execute("CREATE VIEW mart.order_count AS SELECT n FROM intermediate.order_counts")
    finally:
        conn.close()
    return path


def _with_as_of(alerts):
    # (alert_id, level, type, entity, recipient, as_of, message)
    return [(a[0], a[1], a[2], a[3], a[4], AS_OF, a[5]) for a in alerts]


@contextmanager
def running_dashboard(config) -> Iterator[str]:
    """Serve the dashboard on a free 127.0.0.1 port in a thread; yields its base URL."""
    import uvicorn

    from recon_pipeline.dashboard import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("dashboard did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture()
def settings():
    """The packaged default settings."""
    return load_settings()
