"""The dbt project end to end: a small warehouse in tmp_path, a real `dbt build`, the mart rows.

The fixture plays the Python side: raw history as ingestion writes it (with overlapping bank
downloads, a superseded CRM version and a drop dated after the as-of) and the matching seam
`matching.receipt_links` as the engine fills it. The dbt unit tests (`unit_tests:` in the model
.yml files) cover each business rule in isolation and run inside the same `dbt build`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from recon_pipeline.warehouse import connect, ensure_schema
from tests import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
DBT_EXECUTABLE = Path(sys.executable).parent / "dbt"
AS_OF = "2025-04-01 17:00:00"  # the 17:00 run on the first day after the March cutoff


def run_dbt(tmp_path: Path, *args: str, warehouse: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real dbt CLI on the project with target/ and logs/ private to this test."""
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_WAREHOUSE", "RECON_DEV_WAREHOUSE")}
    if warehouse is not None:  # the default (dev) target, on this test's own file
        env["RECON_DEV_WAREHOUSE"] = str(warehouse)
    command = [
        str(DBT_EXECUTABLE), *args,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(tmp_path / "target"),
        "--log-path", str(tmp_path / "logs"),
    ]
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def insert(conn, table: str, rows: list[dict], drop_date: str) -> None:
    """Insert rows into a raw table as ingestion would, with provenance of the given drop."""
    for row_number, row in enumerate(rows, start=2):
        row = {"_drop_date": drop_date, "_source_file": f"{table.split('.')[-1]}/{drop_date}/export.csv",
               "_row_number": row_number, **row}
        columns = ", ".join(row)
        placeholders = ", ".join("?" for _ in row)
        conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", list(row.values()))


def link(txn_id, order_id, amount, status="auto_linked", method="memo_order_id", score=100, customer_id=None):
    return {"account_no": "6222000011112222", "txn_id": txn_id, "customer_id": customer_id, "order_id": order_id,
            "allocated_amount": amount, "match_method": method, "match_score": score, "match_status": status,
            "evidence": "{}"}


def bank_line(txn_id, txn_time, amount, memo, counterparty="上海甲科技有限公司"):
    return {"account_no": "6222000011112222", "txn_id": txn_id, "txn_time": txn_time, "amount": amount,
            "currency": "CNY", "counterparty_name": counterparty, "memo": memo}


def contract(order_id, customer_id, salesperson_id, amount, status, signed_at=None, updated_at="2025-03-20 09:00:00"):
    return {"order_id": order_id, "contract_no": f"HT-{order_id}", "customer_id": customer_id,
            "salesperson_id": salesperson_id, "region_code": "SH", "industry": "制造业", "amount": amount,
            "currency": "CNY", "status": status, "signed_at": signed_at, "approval_status": "approved",
            "updated_at": updated_at}


def invoice(invoice_no, order_id, invoice_date, total, invoice_type="normal", status="issued"):
    return {"invoice_no": invoice_no, "order_id": order_id, "invoice_date": invoice_date, "total_amount": total,
            "invoice_type": invoice_type, "status": status, "updated_at": f"{invoice_date} 12:00:00"}


def archive(archive_no, order_id, archived_at, review_status="approved"):
    return {"archive_no": archive_no, "order_id": order_id, "review_status": review_status,
            "reviewed_at": archived_at, "archived_at": archived_at, "updated_at": archived_at}


def build_warehouse(path: Path) -> None:
    with connect(path) as conn:
        ensure_schema(conn)
        insert(conn, "raw.customers", [
            {"customer_id": "C1", "customer_name": "上海甲科技有限公司", "updated_at": "2025-01-01 09:00:00"},
            {"customer_id": "C2", "customer_name": "北京乙信息技术有限公司", "updated_at": "2025-01-01 09:00:00"},
        ], "2025-02-01")
        insert(conn, "raw.salespeople", [
            {"salesperson_id": "S1", "name": "张伟", "updated_at": "2025-01-01 09:00:00"},
            {"salesperson_id": "S2", "name": "李娜", "updated_at": "2025-01-01 09:00:00"},
        ], "2025-02-01")
        insert(conn, "raw.crm_contracts", [
            contract("25SH00001", "C1", "S1", "10000.00", "signed", "2025-02-10 10:00:00"),
            contract("25SH00002", "C1", "S1", "5000.00", "signed", "2025-03-01 10:00:00"),
            contract("25SH00003", "C2", "S2", "8000.00", "signed", "2025-03-15 10:00:00"),
            contract("25SH00004", "C2", "S2", "3000.00", "signed", "2025-03-02 10:00:00", "2025-03-02 10:00:00"),
            contract("25SH00005", "C2", "S2", "2000.00", "draft"),
            contract("25SH00006", "C2", "S2", "1000.00", "signed", "2025-03-20 10:00:00"),
        ], "2025-03-20")
        # A later version cancels 25SH00004.
        insert(conn, "raw.crm_contracts", [
            contract("25SH00004", "C2", "S2", "3000.00", "cancelled", "2025-03-02 10:00:00", "2025-03-25 10:00:00"),
        ], "2025-03-25")
        insert(conn, "raw.erp_invoices", [
            invoice("INV001", "25SH00001", "2025-02-15", "10000.00"),
            # Issued, cancelled by a red-letter note, re-issued; a voided duplicate does not count.
            invoice("INV002", "25SH00002", "2025-03-10", "5000.00"),
            invoice("INV003", "25SH00002", "2025-03-12", "-5000.00", invoice_type="red"),
            invoice("INV004", "25SH00002", "2025-03-20", "5000.00"),
            invoice("INV005", "25SH00002", "2025-03-11", "5000.00", status="voided"),
            invoice("INV006", "25SH00006", "2025-03-22", "1000.00"),
        ], "2025-03-25")
        insert(conn, "raw.bank_transactions", [
            bank_line("B1", "2025-02-20 10:00:00", "6000.00", "25SH00001 首付"),
            bank_line("B2", "2025-03-05 09:00:00", "4000.00", "25sh1 尾款"),
        ], "2025-03-05")
        # The next download overlaps: B2 again.
        insert(conn, "raw.bank_transactions", [
            bank_line("B2", "2025-03-05 09:00:00", "4000.00", "25sh1 尾款"),
            bank_line("B3", "2025-03-25 10:00:00", "4999.50", "订单25-SH-00002"),
            bank_line("B4", "2025-03-28 11:00:00", "1000.00", "货款", counterparty="北京乙信息"),
            bank_line("B5", "2025-03-29 11:00:00", "250.00", "利息", counterparty="某银行"),
            bank_line("B6", "2025-03-29 12:00:00", "-300.00", "手续费", counterparty="某银行"),
        ], "2025-03-31")
        # Dated after the as-of: not visible yet.
        insert(conn, "raw.bank_transactions", [
            bank_line("B7", "2025-04-02 09:00:00", "700.00", "25SH00003"),
        ], "2025-04-02")
        insert(conn, "raw.legal_archive", [
            archive("A1", "25SH00001", "2025-03-31 15:59:00"),  # before the 16:00 cutoff: March
            archive("A2", "25SH00002", "2025-03-31 16:01:00"),  # after it: April
            archive("A3", "25SH00006", "2025-03-22 10:00:00"),
            archive("A4", "25XX09999", "2025-03-22 10:00:00"),  # no such CRM order
        ], "2025-03-31")
        insert(conn, "raw.finance_writeoffs", [
            {"writeoff_id": "W1", "txn_id": "B1", "order_id": "25SH00001", "amount": "6000.00",
             "confirmed_by": "王芳", "confirmed_at": "2025-02-21 10:00:00", "status": "active"},
        ], "2025-03-01")
        for row in [
            link("B1", "25SH00001", "6000.00", status="confirmed", customer_id="C1"),
            link("B2", "25SH00001", "4000.00", customer_id="C1"),
            link("B3", "25SH00002", "4999.50", customer_id="C1"),
            link("B4", "25SH00006", "1000.00", status="suggested", method="fuzzy", score=88, customer_id="C2"),
        ]:
            columns = ", ".join(row)
            conn.execute(f"INSERT INTO matching.receipt_links ({columns}) VALUES ({', '.join('?' for _ in row)})",
                         list(row.values()))


def query(path: Path, sql: str) -> list[dict]:
    with connect(path, read_only=True) as conn:
        cursor = conn.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


@pytest.fixture(scope="module")
def built_warehouse(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("dbt_build")
    warehouse = tmp_path / "recon.duckdb"
    build_warehouse(warehouse)
    result = run_dbt(tmp_path, "build", "--vars", f"{{as_of: '{AS_OF}'}}", warehouse=warehouse)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return warehouse


def by_key(rows: list[dict], *key: str) -> dict:
    return {tuple(row[k] for k in key) if len(key) > 1 else row[key[0]]: row for row in rows}


@pytest.mark.e2e
def test_orders_get_legs_amounts_status_and_recognized_period(built_warehouse):
    orders = by_key(query(built_warehouse, "select * from mart.fct_order_reconciliation"), "order_id")
    assert sorted(orders) == [f"25SH0000{i}" for i in range(1, 7)]

    first = orders["25SH00001"]  # split payment; archived 15:59 on the last day -> March
    assert (first["invoiced_amount"], first["received_amount"], first["written_off_amount"],
            first["outstanding_amount"]) == (Decimal("10000.00"), Decimal("10000.00"), Decimal("6000.00"), Decimal("0.00"))
    assert str(first["finance_leg_closed_at"]) == "2025-03-05 09:00:00"  # covering credit after the invoice date
    assert (first["status"], first["is_closed"], first["recognized_period"]) == ("closed", True, "2025-03")
    assert first["customer_name"] == "上海甲科技有限公司"

    second = orders["25SH00002"]  # red-letter note + re-issue; paid 0.50 short; archived 16:01 -> April
    assert second["invoiced_amount"] == Decimal("5000.00")
    assert second["outstanding_amount"] == Decimal("0.50")
    assert str(second["finance_leg_closed_at"]) == "2025-03-25 10:00:00"
    assert (second["status"], second["recognized_period"]) == ("closed", "2025-04")

    assert (orders["25SH00003"]["status"], orders["25SH00003"]["outstanding_amount"]) == ("open", Decimal("8000.00"))
    assert orders["25SH00004"]["status"] == "cancelled"  # the later CRM version wins
    assert orders["25SH00004"]["sales_leg_closed_at"] is None
    assert orders["25SH00005"]["status"] == "draft"
    sixth = orders["25SH00006"]  # only a fuzzy suggestion: no money received yet
    assert (sixth["status"], sixth["received_amount"], sixth["lifecycle_stage"]) == ("open", Decimal("0.00"), "awaiting_payment")


@pytest.mark.e2e
def test_every_visible_credit_is_listed_once_per_allocation(built_warehouse):
    matches = by_key(query(built_warehouse, "select * from mart.fct_receipt_matches"), "txn_id")
    # B6 is a debit, B7 arrived in a drop after the as-of.
    assert sorted(matches) == ["B1", "B2", "B3", "B4", "B5"]
    assert matches["B4"]["match_status"] == "suggested"
    unmatched = matches["B5"]
    assert (unmatched["order_id"], unmatched["match_method"], unmatched["match_status"],
            unmatched["allocated_amount"]) == (None, "none", "unmatched", Decimal("250.00"))


@pytest.mark.e2e
def test_diff_list_names_the_three_kinds_of_difference(built_warehouse):
    rows = query(built_warehouse, "select as_of_date, diff_type, entity_id, amount from mart.diff_list")
    assert {(r["diff_type"], r["entity_id"], r["amount"]) for r in rows} == {
        ("contract_without_receipt", "25SH00003", Decimal("8000.00")),
        ("contract_without_receipt", "25SH00006", Decimal("1000.00")),
        ("receipt_without_contract", "B4", Decimal("1000.00")),
        ("receipt_without_contract", "B5", Decimal("250.00")),
        ("archive_without_order", "A4", None),
    }
    assert {str(r["as_of_date"]) for r in rows} == {"2025-04-01"}


@pytest.mark.e2e
def test_salesperson_periods_are_dense_with_discrepancy_rates(built_warehouse):
    rows = by_key(query(built_warehouse, "select * from mart.salesperson_period_summary"), "salesperson_id", "period")
    assert sorted(rows) == [("S1", "2025-02"), ("S1", "2025-03"), ("S1", "2025-04"), ("S2", "2025-03"), ("S2", "2025-04")]
    figures = {key: (r["signed_amount"], r["recognized_amount"], r["collected_amount"]) for key, r in rows.items()}
    assert figures[("S1", "2025-02")] == (Decimal("10000.00"), Decimal("0.00"), Decimal("6000.00"))
    assert figures[("S1", "2025-03")] == (Decimal("5000.00"), Decimal("10000.00"), Decimal("8999.50"))
    assert figures[("S1", "2025-04")] == (Decimal("0.00"), Decimal("5000.00"), Decimal("0.00"))
    assert figures[("S2", "2025-03")] == (Decimal("9000.00"), Decimal("0.00"), Decimal("0.00"))  # cancelled not signed
    assert rows[("S1", "2025-03")]["discrepancy_rate"] == pytest.approx(-1.0)
    assert rows[("S2", "2025-03")]["needs_review"] is True
    assert rows[("S1", "2025-04")]["discrepancy_rate"] is None
    assert rows[("S1", "2025-04")]["needs_review"] is False
    assert [rows[("S1", p)]["is_period_closed"] for p in ("2025-02", "2025-03", "2025-04")] == [True, True, False]


@pytest.mark.e2e
def test_models_land_in_their_schemas_with_decimal_money(built_warehouse):
    columns = query(built_warehouse, """
        select table_schema, table_name, column_name, data_type from information_schema.columns
        where table_schema in ('staging', 'intermediate', 'mart')""")
    tables = {(c["table_schema"], c["table_name"]) for c in columns}
    assert {("mart", t) for t in ("fct_order_reconciliation", "fct_receipt_matches",
                                  "salesperson_period_summary", "diff_list")} <= tables
    assert {t for s, t in tables if s == "staging"} >= {
        "stg_customers", "stg_salespeople", "stg_crm_contracts", "stg_erp_invoices",
        "stg_bank_transactions", "stg_legal_archive", "stg_finance_writeoffs"}
    money = {(c["table_name"], c["column_name"]): c["data_type"] for c in columns if c["table_schema"] == "mart"
             and c["column_name"].endswith("_amount")}
    assert money and set(money.values()) == {"DECIMAL(18,2)"}


# CONTRACT.md section 4: these columns may never be renamed or removed.
CONTRACT_COLUMNS = {
    "fct_order_reconciliation": [
        "order_id", "customer_id", "salesperson_id", "region_code", "industry", "contract_amount",
        "invoiced_amount", "received_amount", "written_off_amount", "outstanding_amount",
        "sales_leg_closed_at", "legal_leg_closed_at", "finance_leg_closed_at", "is_closed",
        "recognized_period", "status"],
    "fct_receipt_matches": [
        "account_no", "txn_id", "customer_id", "order_id", "allocated_amount", "match_method",
        "match_score", "match_status"],
    "diff_list": ["as_of_date", "diff_type", "entity_id", "amount"],
    "salesperson_period_summary": [
        "salesperson_id", "period", "signed_amount", "recognized_amount", "collected_amount",
        "discrepancy_rate", "needs_review"],
}


@pytest.mark.e2e
@pytest.mark.parametrize("table", sorted(CONTRACT_COLUMNS))
def test_mart_tables_keep_the_contract_columns(built_warehouse, table):
    columns = [r["column_name"] for r in query(
        built_warehouse,
        f"select column_name from information_schema.columns where table_schema = 'mart' and table_name = '{table}'")]
    missing = [c for c in CONTRACT_COLUMNS[table] if c not in columns]
    assert not missing


def test_dbt_parse_needs_no_warehouse_variable(tmp_path):
    """A fresh clone (no RECON_WAREHOUSE, no target/) can parse the project: dagster-dbt needs the manifest."""
    result = run_dbt(tmp_path, "parse")
    assert result.returncode == 0, result.stdout[-4000:]
    assert (tmp_path / "target" / "manifest.json").is_file()
