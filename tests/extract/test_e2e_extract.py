"""Done-when of extraction: the demo pulled from real systems gives the same marts as its files.

The demo's CRM contracts, invoices and write-offs go into PostgreSQL (typed middle tables: the
CRM one with Chinese column names and an incremental `更新时间`, the invoices a daily snapshot
table, the write-offs read through a query), its bank statement files onto the SFTP server and
its legal-review approvals behind the DingTalk-shaped HTTP API. Day by day, each system gets
what the demo delivered that day and `extract_sources` runs at that day's as-of; customers and
salespeople stay files. The pipeline then runs on the extracted landing zone and every `mart`
table of its publication equals the one built from the demo's own files.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, time
from pathlib import Path

import duckdb
import pytest
import yaml

from recon_pipeline.as_of import parse_as_of
from recon_pipeline.demo.generator import generate_demo
from recon_pipeline.extract.stage import extract_sources
from recon_pipeline.ingest.loader import drop_files, list_drops
from recon_pipeline.ingest.readers import read_canonical_frame
from recon_pipeline.pipeline import run_pipeline
from recon_pipeline.publish.publication import default_published_path
from recon_pipeline.settings import load_settings
from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import connect
from tests.extract import servers
from tests.extract.conftest import SERVER_GROUP
from tests.extract.test_http import dingtalk_entry

pytestmark = [pytest.mark.e2e, SERVER_GROUP]

CRM_LABELS = {  # the CRM middle table's own column names (the default column mapping knows them)
    "order_id": "订单号", "contract_no": "合同编号", "customer_id": "客户编号", "customer_name": "客户名称",
    "salesperson_id": "销售编号", "region_code": "区域", "industry": "行业", "amount": "合同金额", "currency": "币种",
    "status": "状态", "signed_at": "签约时间", "approval_status": "审批状态", "approval_submitted_at": "提交审批时间",
    "approval_updated_at": "审批更新时间", "updated_at": "更新时间",
}
LEGAL_LABELS = {"archive_no": "归档编号", "order_id": "订单号", "review_status": "审核状态", "submitted_at": "提交时间",
                "reviewed_at": "审核时间", "archived_at": "归档时间", "updated_at": "更新时间"}
PG_TYPES = {"text": "varchar(200)", "enum": "varchar(20)", "decimal": "numeric(18,2)", "timestamp": "timestamp",
            "date": "date"}
MIDDLE_TABLES = {"crm_contracts": "crm_middle", "erp_invoices": "erp_invoice_status", "finance_writeoffs": "fin_writeoffs"}


def _create_table(postgres, database: str, source: str, labels: dict[str, str]) -> tuple[str, list[str]]:
    spec = SOURCES[source]
    columns = [(labels.get(c.name, c.name), PG_TYPES[c.type]) for c in spec.columns]
    postgres.execute(database, f"CREATE TABLE {MIDDLE_TABLES[source]} ({', '.join(f'{n} {t}' for n, t in columns)})")
    names = [n for n, _ in columns]
    params = ", ".join(f":p{i}" for i in range(len(names)))
    return f"INSERT INTO {MIDDLE_TABLES[source]} VALUES ({params})", names


def _raw_rows_by_day(warehouse: Path, source: str) -> dict:
    """The typed rows each drop delivered (raw history of the files run, quarantined rows excluded)."""
    columns = ", ".join(f'"{c}"' for c in SOURCES[source].column_names)
    with connect(warehouse, read_only=True) as conn:
        rows = conn.execute(f"SELECT _drop_date, {columns} FROM raw.{source} "
                            "ORDER BY _drop_date, _source_file, _row_number").fetchall()
    by_day: dict = {}
    for day, *values in rows:
        by_day.setdefault(day, []).append({f"p{i}": v for i, v in enumerate(values)})
    return by_day


def _mart_tables(published: Path) -> dict[str, list[tuple]]:
    """Every mart table's rows, in a fixed order; DOUBLE ratios to 12 significant digits (their
    last bits depend on the order rows were summed in, which differs between two landing zones)."""
    def same_order(row: tuple) -> tuple:
        return tuple(float(f"{v:.12g}") if isinstance(v, float) else v for v in row)

    with duckdb.connect(str(published), read_only=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mart' ORDER BY 1").fetchall()]
        return {name: sorted((same_order(r) for r in conn.execute(f'SELECT * FROM mart."{name}"').fetchall()), key=repr)
                for name in names}


def test_extracted_sources_give_the_same_marts_as_dropped_files(tmp_path, postgres, database, sftp, outbox, approvals,
                                                                monkeypatch):
    demo = generate_demo(tmp_path / "demo", seed=7)
    settings = load_settings()
    as_of = parse_as_of(demo.as_of, settings.timezone)
    files_warehouse = tmp_path / "files.duckdb"
    run_pipeline(demo.landing_dir, files_warehouse, as_of, settings)

    # The source systems, and the settings that pull from them (the README's forms).
    name, url = database
    inserts = {source: _create_table(postgres, name, source, CRM_LABELS if source == "crm_contracts" else {})
               for source in MIDDLE_TABLES}
    delivered = {source: _raw_rows_by_day(files_warehouse, source) for source in MIDDLE_TABLES}
    monkeypatch.setenv("RECON_CRM_DB_URL", url)
    monkeypatch.setenv("RECON_ERP_DB_URL", url)
    monkeypatch.setenv("RECON_BANK_SFTP_KEY", str(sftp.key_file))
    monkeypatch.setenv("RECON_DINGTALK_TOKEN", approvals.token)
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"extract": {
        "crm_contracts": {"kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle", "incremental": "更新时间"},
        "erp_invoices": {"kind": "sql", "url_env": "RECON_ERP_DB_URL", "table": "erp_invoice_status"},
        "finance_writeoffs": {"kind": "sql", "url_env": "RECON_ERP_DB_URL",
                              "query": "select * from fin_writeoffs where status in ('active', 'reversed')"},
        "bank_transactions": {"kind": "sftp", "host": "127.0.0.1", "port": sftp.port, "user": sftp.user,
                              "key_file_env": "RECON_BANK_SFTP_KEY", "remote_dir": str(outbox), "glob": "*",
                              "settle_seconds": 0.05},
        "legal_archive": dingtalk_entry(approvals.base_url),
    }}, allow_unicode=True, sort_keys=False), encoding="utf-8")
    extract_settings = load_settings(settings_file)

    landing = tmp_path / "extracted"
    for source in ("customers", "salespeople"):  # these stay files
        shutil.copytree(demo.landing_dir / source, landing / source)
    drops, _ = list_drops(demo.landing_dir)
    days = sorted({day for source, day in drops if source not in ("customers", "salespeople")})
    for day in days:
        todays = {source for source, d in drops if d == day}
        for source, (insert, _) in inserts.items():
            rows = delivered[source].get(day)
            if source != "crm_contracts" and source in todays:  # a snapshot table: today's state only
                postgres.execute(name, f"TRUNCATE {MIDDLE_TABLES[source]}")
            if rows:
                postgres.execute(name, insert, rows=rows)
        for path in drop_files(demo.landing_dir, "bank_transactions", day):
            shutil.copy2(path, outbox / path.name)  # the bank's delivery, mtime kept
        approvals.instances = {}
        for path in drop_files(demo.landing_dir, "legal_archive", day):
            frame = read_canonical_frame(path, SOURCES["legal_archive"], settings)
            for record in frame.drop(columns="_row_number").to_dict("records"):
                form = {LEGAL_LABELS[k]: (v or None) for k, v in record.items()}
                number = f"proc-{len(approvals.instances):06d}"
                approvals.instances[number] = servers.dingtalk_instance(number, form)
        report = extract_sources(landing, datetime.combine(day, time(23, 0)), extract_settings)
        assert not report.failed, report.failed[0].error

    # Every drop day of the files came through extraction, and a repeat adds nothing.
    assert sorted(list_drops(landing)[0]) == sorted(drops)
    assert extract_sources(landing, datetime.combine(days[-1], time(23, 0)), extract_settings).files == []

    extracted_warehouse = tmp_path / "extracted.duckdb"
    run_pipeline(landing, extracted_warehouse, as_of, extract_settings)
    expected = _mart_tables(default_published_path(files_warehouse))
    actual = _mart_tables(default_published_path(extracted_warehouse))
    assert sorted(actual) == sorted(expected)
    for table in ("fct_order_reconciliation", "fct_receipt_matches", "salesperson_period_summary", "alerts",
                  "diff_list", "health_metrics"):  # the contract's tables are not trivially equal
        assert len(expected[table]) > 0, table
    for table, rows in expected.items():
        assert actual[table] == rows, f"mart.{table} differs"
    with connect(extracted_warehouse, read_only=True) as conn:
        files = {r[0] for r in conn.execute("SELECT DISTINCT _source_file FROM raw.crm_contracts").fetchall()}
    assert all(os.path.basename(f).startswith("extract-") for f in files)
