"""`kind: sql` against a real PostgreSQL server: drops, types, watermark and the bad cases."""

from __future__ import annotations

import time
from datetime import date, datetime
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from recon_pipeline.extract.stage import extract_sources
from recon_pipeline.ingest.loader import load_drop
from recon_pipeline.ingest.readers import read_canonical_frame
from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import connect
from tests.extract import servers
from tests.extract.conftest import SERVER_GROUP, landed

pytestmark = SERVER_GROUP

AS_OF = datetime(2025, 5, 6, 0, 30)

CRM_TABLE = """
CREATE TABLE crm_middle (
    订单号 varchar(20), 合同编号 varchar(30), 客户编号 varchar(20), 客户名称 varchar(100),
    合同金额 numeric(18,2), 状态 varchar(20), 签约时间 timestamp, 审批更新时间 timestamptz,
    更新时间 timestamp, 备注 text
)"""
INSERT_CRM = ("INSERT INTO crm_middle VALUES (:order_id, :contract, :customer, :name, :amount, :status, "
              ":signed, :approved, :updated, :memo)")


def crm_row(order_id: str, amount: str, updated: str, status: str = "已签约", memo: str | None = None) -> dict:
    return {"order_id": order_id, "contract": f"HT-{order_id}", "customer": "C001", "name": "上海星辰制造有限公司",
            "amount": amount, "status": status, "signed": "2025-05-01 10:00:00",
            "approved": "2025-05-01 02:30:00+00", "updated": updated, "memo": memo}


@pytest.fixture()
def crm(postgres, database, monkeypatch, settings_from):
    """crm_middle with two rows, RECON_CRM_DB_URL pointing at it, and the issue's settings form."""
    name, url = database
    postgres.execute(name, CRM_TABLE, INSERT_CRM, rows=[
        crm_row("25SH00001", "1234.50", "2025-05-01 10:00:00", memo="首单"),
        crm_row("25SH00002", "88000.00", "2025-05-02 11:00:00"),
    ])
    monkeypatch.setenv("RECON_CRM_DB_URL", url)
    settings = settings_from({"extract": {"crm_contracts": {
        "kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle"}}})
    return name, settings


def test_table_lands_as_an_ordinary_drop_with_the_tables_names_and_types(crm, landing, tmp_path):
    _, settings = crm
    report = extract_sources(landing, AS_OF, settings)

    assert not report.failed
    assert landed(landing) == ["crm_contracts/2025-05-06/extract-003000.parquet"]
    table = pq.read_table(landing / "crm_contracts/2025-05-06/extract-003000.parquet")
    assert table.column_names == ["订单号", "合同编号", "客户编号", "客户名称", "合同金额", "状态", "签约时间",
                                  "审批更新时间", "更新时间", "备注"]
    assert str(table.schema.field("合同金额").type) == "decimal128(18, 2)"  # money never becomes a float
    first = table.to_pylist()[0]
    assert first["合同金额"] == Decimal("1234.50")
    assert first["审批更新时间"] == datetime(2025, 5, 1, 10, 30)  # 02:30 UTC is 10:30 in Asia/Shanghai

    # Ingest reads it like any file: the default column mapping maps the Chinese names.
    frame = read_canonical_frame(landing / "crm_contracts/2025-05-06/extract-003000.parquet",
                                 SOURCES["crm_contracts"], settings)
    assert frame["order_id"].tolist() == ["25SH00001", "25SH00002"]
    with connect(tmp_path / "w.duckdb") as conn:
        loaded = load_drop(conn, landing, "crm_contracts", date(2025, 5, 6), settings)
        rows = conn.execute("SELECT order_id, amount, status, approval_updated_at, _extra_columns "
                            "FROM raw.crm_contracts ORDER BY order_id").fetchall()
    assert loaded.rows_loaded == 2 and loaded.rows_quarantined == 0
    assert rows[0] == ("25SH00001", Decimal("1234.50"), "signed", datetime(2025, 5, 1, 10, 30), '{"备注":"首单"}')


def test_the_same_extraction_twice_adds_nothing_and_a_change_adds_a_file(crm, postgres, landing):
    name, settings = crm
    extract_sources(landing, AS_OF, settings)
    again = extract_sources(landing, AS_OF, settings)
    assert again.files == [] and "相同" in again.results[0].summary()
    assert landed(landing) == ["crm_contracts/2025-05-06/extract-003000.parquet"]

    postgres.execute(name, "UPDATE crm_middle SET 状态 = '已取消', 更新时间 = '2025-05-06 00:10:00' WHERE 订单号 = '25SH00002'")
    changed = extract_sources(landing, AS_OF, settings)
    # The first drop is kept as received; the new snapshot sorts after it.
    assert changed.files == ["crm_contracts/2025-05-06/extract-003000_2.parquet"]
    assert len(landed(landing)) == 2


def test_query_form_and_a_non_postgres_url(landing, settings_from, monkeypatch, tmp_path, postgres, database):
    name, url = database
    postgres.execute(name, "CREATE TABLE inv (fphm varchar(20), jshj numeric(18,2), kprq date, zt varchar(10))",
                     "INSERT INTO inv VALUES (:no, :total, :day, :state)",
                     rows=[{"no": "00012345", "total": "-100.00", "day": "2025-05-05", "state": "issued"},
                           {"no": "00012346", "total": "200.00", "day": "2025-05-05", "state": "draft"}])
    monkeypatch.setenv("RECON_ERP_DB_URL", url)
    settings = settings_from({"extract": {"erp_invoices": {
        "kind": "sql", "url_env": "RECON_ERP_DB_URL",
        "query": "select fphm as invoice_no, jshj as total_amount, kprq as invoice_date from inv where zt = 'issued'"}}})
    extract_sources(landing, AS_OF, settings)
    table = pq.read_table(landing / "erp_invoices/2025-05-06/extract-003000.parquet")
    assert table.to_pylist() == [{"invoice_no": "00012345", "total_amount": Decimal("-100.00"), "invoice_date": date(2025, 5, 5)}]

    # Any SQLAlchemy URL works the same way (here SQLite, whose driver ships with Python).
    import sqlite3

    sqlite_file = tmp_path / "erp.db"
    with sqlite3.connect(sqlite_file) as db:
        db.execute("CREATE TABLE writeoffs (writeoff_id TEXT, amount TEXT, status TEXT)")
        db.execute("INSERT INTO writeoffs VALUES ('W1', '100.00', 'active')")
    monkeypatch.setenv("RECON_FIN_DB_URL", f"sqlite:///{sqlite_file}")
    settings = settings_from({"extract": {"finance_writeoffs": {
        "kind": "sql", "url_env": "RECON_FIN_DB_URL", "table": "writeoffs"}}})
    assert extract_sources(landing, AS_OF, settings).files == ["finance_writeoffs/2025-05-06/extract-003000.parquet"]


def test_incremental_watermark_takes_only_new_and_changed_rows(crm, postgres, landing, settings_from):
    name, _ = crm
    settings = settings_from({"extract": {"crm_contracts": {
        "kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle", "incremental": "更新时间"}}})
    first = extract_sources(landing, AS_OF, settings)
    assert first.results[0].rows == 2

    postgres.execute(name, INSERT_CRM, rows=[
        # committed late with the same time as the watermark: `>=` still finds it
        crm_row("25SH00003", "10.00", "2025-05-02 11:00:00"),
        crm_row("25SH00004", "20.00", "2025-05-03 09:00:00"),
    ])
    postgres.execute(name, "UPDATE crm_middle SET 合同金额 = 1300.00, 更新时间 = '2025-05-03 09:30:00' WHERE 订单号 = '25SH00001'")
    second = extract_sources(landing, datetime(2025, 5, 7, 0, 30), settings)
    table = pq.read_table(landing / second.files[0])
    assert sorted(table.column("订单号").to_pylist()) == ["25SH00001", "25SH00003", "25SH00004"]

    third = extract_sources(landing, datetime(2025, 5, 8, 0, 30), settings)
    assert third.files == [] and third.results[0].note == "没有新行"
    state = (landing / ".extract" / "crm_contracts.json").read_text(encoding="utf-8")
    assert '"2025-05-03T09:30:00"' in state


def test_wrong_credentials_is_one_clear_line_and_no_drop(crm, postgres, landing, monkeypatch):
    _, settings = crm
    monkeypatch.setenv("RECON_CRM_DB_URL", postgres.url(crm[0], password="wrong-password"))
    report = extract_sources(landing, AS_OF, settings)
    message = report.failed[0].error
    assert message.startswith("crm_contracts: 数据库登录失败") and "RECON_CRM_DB_URL" in message
    assert "wrong-password" not in message and "\n" not in message
    assert landed(landing) == []


def test_unreachable_database_fails_within_the_timeout(landing, settings_from, monkeypatch):
    settings = settings_from({"extract": {"crm_contracts": {
        "kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle", "timeout": 2}}})
    monkeypatch.setenv("RECON_CRM_DB_URL", f"postgresql://u:p@127.0.0.1:{servers.free_port()}/db")
    refused = extract_sources(landing, AS_OF, settings).failed[0].error
    assert refused.startswith("crm_contracts: 无法连接数据库 127.0.0.1:")

    with servers.silent_server() as port:  # accepts the connection, never answers
        monkeypatch.setenv("RECON_CRM_DB_URL", f"postgresql://u:p@127.0.0.1:{port}/db")
        started = time.monotonic()
        hung = extract_sources(landing, AS_OF, settings).failed[0].error
        elapsed = time.monotonic() - started
    assert "超时" in hung and elapsed < 15
    assert landed(landing) == []


def test_a_column_that_changed_type_stops_before_writing(crm, postgres, landing):
    name, settings = crm
    extract_sources(landing, AS_OF, settings)
    postgres.execute(name, "ALTER TABLE crm_middle ALTER COLUMN 合同金额 TYPE varchar(30) USING to_char(合同金额, 'FM999,999,990.00')")
    later = datetime(2025, 5, 7, 0, 30)
    message = extract_sources(landing, later, settings).failed[0].error
    assert "列 合同金额 的类型变了（上次 number，这次 text）" in message and "--accept-schema-change" in message
    assert landed(landing) == ["crm_contracts/2025-05-06/extract-003000.parquet"]

    accepted = extract_sources(landing, later, settings, accept_schema_change=True)
    assert accepted.files == ["crm_contracts/2025-05-07/extract-003000.parquet"]
    assert not extract_sources(landing, datetime(2025, 5, 8), settings).failed  # the new type is now the known one


def test_a_query_failing_midway_leaves_no_partial_file(postgres, database, landing, settings_from, monkeypatch):
    _, url = database
    monkeypatch.setenv("RECON_ERP_DB_URL", url)
    # Rows are streamed in batches of 2; the fourth row divides by zero on the server.
    settings = settings_from({"extract": {"erp_invoices": {
        "kind": "sql", "url_env": "RECON_ERP_DB_URL", "batch_rows": 2,
        "query": "select n::text as invoice_no, 100 / (4 - n) as total_amount from generate_series(1, 6) as n"}}})
    message = extract_sources(landing, AS_OF, settings).failed[0].error
    assert message.startswith("erp_invoices: 查询失败") and "division by zero" in message
    assert landed(landing) == []
    assert list((landing / ".extract" / "tmp").iterdir()) == []


def test_missing_environment_variable_names_it(landing, settings_from, monkeypatch):
    monkeypatch.delenv("RECON_CRM_DB_URL", raising=False)
    settings = settings_from({"extract": {"crm_contracts": {"kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "t"}}})
    message = extract_sources(landing, AS_OF, settings).failed[0].error
    assert message == "crm_contracts: 环境变量 RECON_CRM_DB_URL 未设置（SQLAlchemy 连接串，如 postgresql://user:password@host:5432/db）"


def test_incremental_over_a_query(landing, settings_from, monkeypatch, tmp_path):
    # The query is wrapped as a subquery and filtered on its own output column.
    import sqlite3

    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE inv (no TEXT, total TEXT, changed TEXT, deleted INTEGER)")
        db.executemany("INSERT INTO inv VALUES (?, ?, ?, ?)", [("A1", "1.00", "2025-05-01 10:00:00", 0),
                                                                ("A2", "2.00", "2025-05-02 10:00:00", 1)])
    monkeypatch.setenv("RECON_ERP_DB_URL", f"sqlite:///{database}")
    settings = settings_from({"extract": {"erp_invoices": {
        "kind": "sql", "url_env": "RECON_ERP_DB_URL", "incremental": "updated_at",
        "query": "select no as invoice_no, total as total_amount, changed as updated_at from inv where deleted = 0"}}})
    assert extract_sources(landing, AS_OF, settings).results[0].rows == 1
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO inv VALUES ('A3', '3.00', '2025-05-03 10:00:00', 0)")
    later = extract_sources(landing, datetime(2025, 5, 7), settings)
    assert pq.read_table(landing / later.files[0]).column("invoice_no").to_pylist() == ["A3"]
