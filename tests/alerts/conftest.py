"""Fixtures for the alert, health and notify tests: a tiny warehouse with the tables they read.

It creates the staging and mart tables those modules read, with the contract's columns (the
staging columns come straight from `recon_pipeline.sources`) plus the extras the dbt models
promise (fct_receipt_matches.txn_time/amount/counterparty_name/memo/evidence,
salesperson_period_summary.is_period_closed). Rows are added with small helpers; every column
not given is null.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import duckdb
import pytest

from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import SQL_TYPES

MART_TABLES = {
    "fct_receipt_matches": {
        "account_no": "VARCHAR",
        "txn_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "order_id": "VARCHAR",
        "allocated_amount": "DECIMAL(18,2)",
        "match_method": "VARCHAR",
        "match_score": "INTEGER",
        "match_status": "VARCHAR",
        "txn_time": "TIMESTAMP",
        "amount": "DECIMAL(18,2)",
        "counterparty_name": "VARCHAR",
        "memo": "VARCHAR",
        "evidence": "VARCHAR",
    },
    "salesperson_period_summary": {
        "salesperson_id": "VARCHAR",
        "period": "VARCHAR",
        "signed_amount": "DECIMAL(18,2)",
        "recognized_amount": "DECIMAL(18,2)",
        "collected_amount": "DECIMAL(18,2)",
        "discrepancy_rate": "DECIMAL(18,6)",
        "needs_review": "BOOLEAN",
        "is_period_closed": "BOOLEAN",
    },
}
STAGING_META = {"_drop_date": "DATE", "_source_file": "VARCHAR", "_row_number": "INTEGER"}
ACCOUNT = "6222000011112222"


class FixtureWarehouse:
    """A DuckDB file with empty staging/mart tables and helpers to fill them."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.conn = duckdb.connect(str(self.path))
        with self.batch():
            self.conn.execute("CREATE SCHEMA IF NOT EXISTS staging")
            self.conn.execute("CREATE SCHEMA IF NOT EXISTS mart")
            for spec in SOURCES.values():
                columns = {c.name: SQL_TYPES[c.type] for c in spec.columns} | STAGING_META
                self._create(f"staging.stg_{spec.name}", columns)
            for name, columns in MART_TABLES.items():
                self._create(f"mart.{name}", columns)

    def _create(self, table: str, columns: dict[str, str]) -> None:
        body = ", ".join(f"{name} {sql_type}" for name, sql_type in columns.items())
        self.conn.execute(f"CREATE TABLE {table} ({body})")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Insert many rows in one transaction (one commit instead of one per row)."""
        self.conn.execute("BEGIN TRANSACTION")
        yield
        self.conn.execute("COMMIT")

    def add(self, table: str, **values: Any) -> None:
        names = list(values)
        placeholders = ", ".join("?" for _ in names)
        params = [str(v) if isinstance(v, Decimal) else v for v in values.values()]
        self.conn.execute(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})", params)

    # --- domain helpers ---------------------------------------------------------------------

    def salesperson(self, salesperson_id: str, name: str, email: str, manager_email: str | None = None) -> None:
        self.add("staging.stg_salespeople", salesperson_id=salesperson_id, name=name, email=email,
                 manager_email=manager_email, region_code="SH")

    def customer(self, customer_id: str, name: str, owner: str | None = None) -> None:
        self.add("staging.stg_customers", customer_id=customer_id, customer_name=name, owner_salesperson_id=owner)

    def order(
        self,
        order_id: str,
        salesperson_id: str = "S01",
        customer_id: str = "C01",
        amount: str = "100000.00",
        status: str = "signed",
        signed_at: datetime | None = datetime(2025, 1, 10, 10, 0),
        approval_status: str | None = "approved",
        approval_submitted_at: datetime | None = None,
        approval_updated_at: datetime | None = None,
    ) -> None:
        self.add(
            "staging.stg_crm_contracts", order_id=order_id, contract_no=f"HT-{order_id}", customer_id=customer_id,
            customer_name=f"客户{customer_id}", salesperson_id=salesperson_id, region_code="SH", amount=amount,
            currency="CNY", status=status, signed_at=signed_at, approval_status=approval_status,
            approval_submitted_at=approval_submitted_at, approval_updated_at=approval_updated_at,
        )

    def archive(self, order_id: str, archived_at: datetime | None, review_status: str = "approved") -> None:
        self.add("staging.stg_legal_archive", archive_no=f"AR-{order_id}", order_id=order_id,
                 review_status=review_status, archived_at=archived_at)

    def credit(
        self,
        txn_id: str,
        amount: str,
        txn_time: datetime,
        order_id: str | None = None,
        customer_id: str | None = "C01",
        match_status: str = "auto_linked",
        amount_mismatch: bool = False,
        allocations: list[tuple[str, str]] | None = None,
    ) -> None:
        """A bank credit in staging and its rows in fct_receipt_matches (one per allocation)."""
        self.add("staging.stg_bank_transactions", account_no=ACCOUNT, txn_id=txn_id, txn_time=txn_time,
                 amount=amount, currency="CNY", counterparty_name="上海某某科技有限公司", memo=order_id or "")
        evidence = json.dumps({"amount_mismatch": True} if amount_mismatch else {"memo_token": order_id})
        if allocations is None:
            allocations = [(order_id, amount)]
        for alloc_order, alloc_amount in allocations:
            status = match_status if alloc_order is not None else "unmatched"
            self.add(
                "mart.fct_receipt_matches", account_no=ACCOUNT, txn_id=txn_id, customer_id=customer_id,
                order_id=alloc_order, allocated_amount=alloc_amount,
                match_method="memo_order_id" if alloc_order else "none", match_score=100 if alloc_order else 0,
                match_status=status, txn_time=txn_time, amount=amount, counterparty_name="上海某某科技有限公司",
                memo=alloc_order or "", evidence=evidence,
            )

    def writeoff(self, writeoff_id: str, txn_id: str, order_id: str | None, amount: str, status: str = "active") -> None:
        self.add("staging.stg_finance_writeoffs", writeoff_id=writeoff_id, txn_id=txn_id, order_id=order_id,
                 amount=amount, confirmed_by="财务王", confirmed_at=datetime(2025, 1, 1), status=status)

    def period(self, salesperson_id: str, period: str, signed: str, recognized: str, closed: bool = True) -> None:
        signed_d, recognized_d = Decimal(signed), Decimal(recognized)
        rate = None if signed_d == 0 else (signed_d - recognized_d) / signed_d
        self.add(
            "mart.salesperson_period_summary", salesperson_id=salesperson_id, period=period, signed_amount=signed,
            recognized_amount=recognized, collected_amount=recognized, discrepancy_rate=rate,
            needs_review=rate is not None and rate > Decimal("0.10"), is_period_closed=closed,
        )


def standard_people(wh: FixtureWarehouse) -> None:
    wh.salesperson("S01", "张三", "zhangsan@example.com", "boss.li@example.com")
    wh.salesperson("S02", "李四", "lisi@example.com", "boss.li@example.com")
    wh.customer("C01", "上海某某科技有限公司", owner="S01")


@pytest.fixture()
def wh(tmp_path):
    """A fixture warehouse (contract columns) with the standard salespeople and managers."""
    warehouse = FixtureWarehouse(tmp_path / "warehouse.duckdb")
    standard_people(warehouse)
    yield warehouse
    warehouse.close()
