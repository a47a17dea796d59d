"""Fixtures shared across the test tree: the packaged settings, and a small published-mart warehouse.

The mart warehouse holds the contract's `mart` tables (CONTRACT.md section 4) plus the agreed
extras, built with plain SQL, so the publication and dashboard tests do not wait for dbt or the
matching engine. EXPECTED holds the figures the pages must show, worked out by hand from the rows.
"""

from __future__ import annotations

import email
import email.policy
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

# Text an attacker could put into a CRM or a bank memo: it must show as text in the dashboard
# and stay inert in the exports.
HOSTILE_NAME = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">恶意商贸'
HOSTILE_FORMULA = '=HYPERLINK("http://evil.example","点我")'

# A draft order of a hostile customer: listed and searchable, in no figure (no sales leg).
HOSTILE_ORDER = ("25SH00007", "C004", "S01", "SH", "制造业", 9999, 0, 0, 0, 9999,
                 None, None, None, False, None, "draft", HOSTILE_NAME, None, HOSTILE_FORMULA)


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
    HOSTILE_ORDER,
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
# A risky suggestion: the memo is not a payment for goods and the amount fits nothing.
EVIDENCE_T008 = (
    '{"payer": {"raw": "上海星辰制造", "normalized": "上海星辰制造", "core": "星辰制造"}, '
    '"candidates": [{"customer_id": "C001", "score": 86}], "risk_flags": ["non_goods_memo"], '
    '"allocation": {"fit": "unapplied", "amount_mismatch": true}}'
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
    ("6222001", "T008", "C001", None, 777.77, "fuzzy", 86, "suggested",
     "2025-03-28 11:00", 777.77, "上海星辰制造", "=1+2 押金退回 <img src=x onerror=alert(1)>", EVIDENCE_T008),
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
    ("C004", HOSTILE_NAME, False, None),
    ("C001", "上海星辰制造有限公司", False, None),
    ("C002", "北京华联商贸有限公司", True, "回款逾期超过 30 天，且有到账金额不符"),
    ("C003", "广州康健医疗器械有限公司", False, None),
]

DIM_CUSTOMERS_DDL = """
CREATE TABLE mart.dim_customers (
  customer_id VARCHAR, customer_name VARCHAR, credit_code VARCHAR, aliases VARCHAR, region_code VARCHAR,
  industry VARCHAR, owner_salesperson_id VARCHAR, owner_salesperson_name VARCHAR, updated_at TIMESTAMP
)"""

DIM_CUSTOMERS = [
    ("C001", "上海星辰制造有限公司", "91310000MA1FL0000X", "星辰制造", "SH", "制造业", "S01", "张三", None),
    ("C002", "北京华联商贸有限公司", None, "华联商贸;北京华联", "BJ", "零售", "S02", "李四", None),
    ("C003", "广州康健医疗器械有限公司", None, None, "GZ", "医疗", "S03", "王五", None),
    ("C004", HOSTILE_NAME, None, '"><img src=x onerror=alert(1)>', "SH", "制造业", "S01", "张三", None),
]

DIM_SALESPEOPLE_DDL = """
CREATE TABLE mart.dim_salespeople (
  salesperson_id VARCHAR, salesperson_name VARCHAR, email VARCHAR, manager_email VARCHAR,
  manager_salesperson_id VARCHAR, manager_name VARCHAR, region_code VARCHAR, updated_at TIMESTAMP
)"""

DIM_SALESPEOPLE = [
    ("S01", "张三", "zhang.san@example.com", "boss@example.com", "M01", "赵经理", "SH", None),
    ("S02", "李四", "li.si@example.com", "boss@example.com", "M01", "赵经理", "BJ", None),
    ("S03", "王五", "wang.wu@example.com", "other.boss@example.com", None, None, "GZ", None),
    ("M01", "赵经理", "boss@example.com", None, None, None, "SH", None),
]

INVOICES_DDL = """
CREATE TABLE mart.fct_invoices (
  invoice_no VARCHAR, order_id VARCHAR, customer_name VARCHAR, invoice_date DATE, amount_excl_tax DECIMAL(18,2),
  tax_amount DECIMAL(18,2), total_amount DECIMAL(18,2), invoice_type VARCHAR, status VARCHAR, counts BOOLEAN,
  counted_amount DECIMAL(18,2), updated_at TIMESTAMP
)"""

INVOICES = [
    ("INV-001", "25SH00001", None, "2025-01-25", 88495.58, 11504.42, 100000, "normal", "issued", True, 100000, None),
    ("INV-002", "25SH00002", None, "2025-03-05", 44247.79, 5752.21, 50000, "normal", "issued", True, 50000, None),
    ("INV-004", "25BJ00004", None, "2025-02-15", 106194.69, 13805.31, 120000, "normal", "issued", True, 120000, None),
    ("INV-004R", "25BJ00004", None, "2025-02-18", -17699.12, -2300.88, -20000, "red", "issued", True, -20000, None),
    ("INV-004B", "25BJ00004", None, "2025-02-18", 17699.12, 2300.88, 20000, "normal", "issued", True, 20000, None),
    ("INV-004V", "25BJ00004", None, "2025-02-16", 8849.56, 1150.44, 10000, "normal", "voided", False, 0, None),
    ("INV-005", "25GZ00005", None, "2024-12-25", 26548.67, 3451.33, 30000, "normal", "issued", True, 30000, None),
]

WRITEOFFS_DDL = """
CREATE TABLE mart.fct_writeoffs (
  writeoff_id VARCHAR, txn_id VARCHAR, order_id VARCHAR, invoice_no VARCHAR, amount DECIMAL(18,2),
  confirmed_by VARCHAR, confirmed_at TIMESTAMP, status VARCHAR
)"""

WRITEOFFS = [
    ("W1", "T001", "25SH00001", "INV-001", 100000, "财务-陈静", "2025-02-05 10:00", "active"),
    ("W2", "T002", "25SH00002", "INV-002", 20000, "财务-陈静", "2025-03-06 10:00", "active"),
    ("W5", "T004", "25GZ00005", "INV-005", 30000, "财务-李娜", "2025-01-15 10:00", "active"),
]

LEGAL_DDL = """
CREATE TABLE mart.fct_legal_archive (
  archive_no VARCHAR, order_id VARCHAR, review_status VARCHAR, submitted_at TIMESTAMP, reviewed_at TIMESTAMP,
  archived_at TIMESTAMP, updated_at TIMESTAMP
)"""

LEGAL = [
    ("GD-001", "25SH00001", "approved", "2025-01-15 10:00", "2025-01-18 10:00", "2025-01-20 09:00", None),
    ("GD-002", "25SH00002", "pending", "2025-03-10 10:00", None, None, None),
    ("GD-004", "25BJ00004", "rejected", "2025-02-20 10:00", "2025-02-22 10:00", None, None),
    ("GD-005", "25GZ00005", "approved", "2024-12-10 10:00", "2024-12-15 10:00", "2024-12-20 09:00", None),
]

EVENTS_DDL = """
CREATE TABLE mart.fct_order_events (
  order_id VARCHAR, event_at TIMESTAMP, event_type VARCHAR, detail VARCHAR, previous_detail VARCHAR, amount DECIMAL(18,2)
)"""

EVENTS = [
    ("25SH00002", "2025-03-01 09:00", "crm_status", "draft", None, 45000),
    ("25SH00002", "2025-03-02 09:00", "amount_changed", "50000.00", "45000.00", 50000),
    ("25SH00002", "2025-03-03 15:00", "crm_status", "signed", "draft", 50000),
    ("25SH00002", "2025-03-05 00:00", "invoice", "INV-002", "normal", 50000),
    ("25SH00002", "2025-03-05 09:30", "receipt", "T002", "confirmed", 20000),
    ("25SH00002", "2025-03-10 10:00", "legal_submitted", "GD-002", None, None),
]

ACTIONS_DDL = """
CREATE TABLE mart.fct_alert_actions (
  action_id VARCHAR, target_type VARCHAR, target_id VARCHAR, action VARCHAR, assignee VARCHAR, note VARCHAR,
  acted_by VARCHAR, acted_at TIMESTAMP, drop_date DATE
)"""

FEEDBACK_DDL = """
CREATE TABLE mart.fct_match_feedback (
  feedback_id VARCHAR, account_no VARCHAR, txn_id VARCHAR, customer_id VARCHAR, order_id VARCHAR, decision VARCHAR,
  decided_by VARCHAR, decided_at TIMESTAMP, comment VARCHAR, drop_date DATE, source_file VARCHAR
)"""

OPTIONAL_TABLES = ("mart.customer_collection_health", "mart.diff_list", "mart.health_metrics")

# What the pages must show for this warehouse (period 2025-03, the as-of's).
EXPECTED = {
    "signed_this_period": "¥130,000.00",      # 25SH00002 + 25BJ00003
    "recognized_this_period": "¥0.00",
    "collected_this_period": "¥20,000.00",    # T002 (confirmed); T005 is only suggested
    "collected_2025_02": "¥220,000.00",       # T001 (after Jan cutoff) + T003
    "signed_2025_02": "¥120,000.00",
    # Signed orders by how far they got: three wait for legal (25SH00002, 25BJ00003, 25BJ00004),
    # two are closed (25SH00001, 25GZ00005) - the closed count `recon run` reports.
    "funnel_stuck_signed": ("3", "¥250,000.00"),
    "funnel_reached_signed": ("5", "¥380,000.00"),
    "funnel_done": ("2", "¥130,000.00"),
    "at_risk_count": "3 单",
    "at_risk_amount": "¥250,000.00",
    "hours_to_cutoff": "2 天 6 小时",
    "match_rate": "80.0%",
    "high_risk_customer": "北京华联商贸有限公司",
    "queue_count": "3 条",
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
            ("mart.dim_customers", DIM_CUSTOMERS_DDL, DIM_CUSTOMERS),
            ("mart.dim_salespeople", DIM_SALESPEOPLE_DDL, DIM_SALESPEOPLE),
            ("mart.fct_invoices", INVOICES_DDL, INVOICES),
            ("mart.fct_writeoffs", WRITEOFFS_DDL, WRITEOFFS),
            ("mart.fct_legal_archive", LEGAL_DDL, LEGAL),
            ("mart.fct_order_events", EVENTS_DDL, EVENTS),
            ("mart.fct_alert_actions", ACTIONS_DDL, []),
            ("mart.fct_match_feedback", FEEDBACK_DDL, []),
        ]
        for name, ddl, rows in tables:
            if name in skip:
                continue
            conn.execute(ddl)
            if rows:
                placeholders = ", ".join("?" for _ in rows[0])
                conn.executemany(f"INSERT INTO {name} VALUES ({placeholders})", [list(r) for r in rows])
        conn.execute("ALTER TABLE mart.fct_order_reconciliation ADD COLUMN salesperson_name VARCHAR")
        if "mart.dim_salespeople" not in skip:
            conn.execute(
                "UPDATE mart.fct_order_reconciliation o SET salesperson_name = s.salesperson_name "
                "FROM mart.dim_salespeople s WHERE s.salesperson_id = o.salesperson_id"
            )
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


# --- a real SMTP server on loopback (alerts, and the dashboard's escalation end to end) ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MailRecorder:
    """aiosmtpd handler: keeps every accepted message; refuses DATA after `refuse_after`."""

    def __init__(self):
        self.messages: list[dict] = []
        self.refuse_after: int | None = None

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_after is not None and len(self.messages) >= self.refuse_after:
            return "554 5.7.1 Message refused: sending quota exceeded"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(
            {
                "rcpt": sorted(envelope.rcpt_tos),
                "to": str(parsed["To"]),
                "cc": str(parsed["Cc"] or ""),
                "subject": str(parsed["Subject"]),
                "message_id": str(parsed["Message-ID"]),
                "body": parsed.get_content(),
            }
        )
        return "250 OK"

    def received_by(self, address: str) -> list[dict]:
        return [m for m in self.messages if address in m["rcpt"]]


@pytest.fixture()
def smtp_server():
    """(recorder, port) of an aiosmtpd server on 127.0.0.1, stopped after the test."""
    from aiosmtpd.controller import Controller

    recorder = MailRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield recorder, controller.port
    controller.stop()


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
