"""Backup and restore round trips, damaged warehouses reported with their recovery, a full disk
during publication."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.publish.publication import PublishError, default_published_path, publish_mart
from recon_pipeline.recovery import (
    RecoveryError,
    backup_warehouse,
    check_warehouse,
    restore_warehouse,
)

RECON = Path(sys.executable).parent / "recon"


def _tricky_warehouse(path: Path) -> Path:
    """Types and values a careless export would change: DECIMAL, TIMESTAMP, NULLs, keys, quotes."""
    conn = duckdb.connect(str(path))
    conn.execute("CREATE SCHEMA raw")
    conn.execute("CREATE SCHEMA mart")
    conn.execute("""CREATE TABLE raw.ingest_log (source VARCHAR NOT NULL, _drop_date DATE NOT NULL,
                    fingerprint VARCHAR, rows_loaded BIGINT, PRIMARY KEY (source, _drop_date))""")
    conn.execute("INSERT INTO raw.ingest_log VALUES ('bank_transactions', '2025-03-01', 'ab12', 3), "
                 "('customers', '2025-03-02', NULL, 0)")
    conn.execute("""CREATE TABLE raw.bank_transactions (account_no VARCHAR, txn_id VARCHAR, amount DECIMAL(18,2),
                    txn_time TIMESTAMP, counterparty_name VARCHAR, memo VARCHAR)""")
    conn.execute("""INSERT INTO raw.bank_transactions VALUES
        ('6222', 'T1', 1234567890123456.78, '2025-03-01 15:59:59', '北京某某科技有限公司', '货款 25SH00137'),
        ('6222', 'T2', -0.01, '2025-02-28 16:00:00', 'O''Neil "Trading" (HK) Co., Ltd.', NULL),
        ('6222', 'T3', NULL, NULL, NULL, '=HYPERLINK("x")')""")
    conn.execute('CREATE TABLE mart."odd name" (flag BOOLEAN, rate DECIMAL(18,6), period VARCHAR)')
    conn.execute("INSERT INTO mart.\"odd name\" VALUES (true, 0.123456, '2025-03'), (NULL, NULL, NULL)")
    conn.execute("CREATE VIEW mart.v AS SELECT * FROM raw.bank_transactions")
    conn.close()
    return path


def _dump(path: Path) -> dict[str, list]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        tables = conn.execute("SELECT schema_name, table_name, sql FROM duckdb_tables() ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": (ddl, sorted(conn.execute(f'SELECT * FROM "{s}"."{t}"').fetchall(), key=repr))
                for s, t, ddl in tables}
    finally:
        conn.close()


def test_backup_then_restore_gives_the_same_tables_types_and_keys(tmp_path):
    warehouse = _tricky_warehouse(tmp_path / "wh.duckdb")
    stats = backup_warehouse(warehouse, tmp_path / "backup")
    assert stats.rows == 2 + 3 + 2
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text(encoding="utf-8"))
    assert [t["file"] for t in manifest["tables"]] == [
        "mart/odd name.parquet", "raw/bank_transactions.parquet", "raw/ingest_log.parquet"]

    restored = restore_warehouse(tmp_path / "backup", tmp_path / "restored.duckdb")
    assert (restored.tables, restored.rows) == (3, 7)
    assert _dump(restored.warehouse) == _dump(warehouse)
    conn = duckdb.connect(str(restored.warehouse))
    with pytest.raises(duckdb.ConstraintException):  # the primary key came back too
        conn.execute("INSERT INTO raw.ingest_log VALUES ('customers', '2025-03-02', 'x', 1)")
    conn.close()


def test_restore_keeps_an_existing_warehouse_and_refuses_without_force(tmp_path):
    warehouse = _tricky_warehouse(tmp_path / "wh.duckdb")
    backup_warehouse(warehouse, tmp_path / "backup")
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()
    with pytest.raises(RecoveryError, match="--force"):
        restore_warehouse(tmp_path / "backup", other)
    stats = restore_warehouse(tmp_path / "backup", other, force=True)
    assert stats.moved_aside is not None and stats.moved_aside.exists()
    assert _dump(other) == _dump(warehouse)


def test_a_tampered_or_incomplete_backup_is_refused_and_nothing_is_written(tmp_path):
    warehouse = _tricky_warehouse(tmp_path / "wh.duckdb")
    backup_warehouse(warehouse, tmp_path / "backup")
    with pytest.raises(RecoveryError, match="不是空的"):
        backup_warehouse(warehouse, tmp_path / "backup")
    part = tmp_path / "backup" / "raw" / "bank_transactions.parquet"
    part.write_bytes(part.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RecoveryError, match="校验失败"):
        restore_warehouse(tmp_path / "backup", tmp_path / "restored.duckdb")
    part.unlink()
    with pytest.raises(RecoveryError, match="缺少文件"):
        restore_warehouse(tmp_path / "backup", tmp_path / "restored.duckdb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "wh.duckdb"]


def _big_warehouse(path: Path) -> Path:
    conn = duckdb.connect(str(path))
    conn.execute("CREATE SCHEMA raw")
    conn.execute("CREATE SCHEMA mart")
    conn.execute("CREATE TABLE raw.bank_transactions AS SELECT i AS id, CAST(i AS DECIMAL(18,2)) AS amount, "
                 "'付款方' || i AS counterparty_name FROM range(300000) t(i)")
    conn.execute("CREATE TABLE mart.fct_receipt_matches AS SELECT * FROM raw.bank_transactions")
    conn.close()
    return path


def test_a_truncated_warehouse_is_reported_with_how_to_recover(tmp_path):
    warehouse = _big_warehouse(tmp_path / "wh.duckdb")
    assert check_warehouse(warehouse)["raw.bank_transactions"] == 300000
    with warehouse.open("r+b") as handle:
        handle.truncate(warehouse.stat().st_size // 2)
    with pytest.raises(RecoveryError, match="recon rebuild"):
        check_warehouse(warehouse)
    completed = subprocess.run([str(RECON), "check", "--warehouse", str(warehouse)], capture_output=True, text=True)
    assert completed.returncode == 1
    assert completed.stderr.count("\n") <= 2 and "已损坏" in completed.stderr


def test_a_damaged_block_is_found_by_the_check(tmp_path):
    warehouse = _big_warehouse(tmp_path / "wh.duckdb")
    size = warehouse.stat().st_size
    with warehouse.open("r+b") as handle:  # zero a stretch in the middle: checksums no longer match
        handle.seek(size // 3)
        handle.write(b"\0" * (size // 3))
    with pytest.raises(RecoveryError, match="已损坏"):
        check_warehouse(warehouse)


def test_garbage_in_place_of_a_published_file_is_reported(tmp_path):
    published = tmp_path / "wh.published.duckdb"
    published.write_bytes(os.urandom(50_000))
    with pytest.raises(RecoveryError, match="已损坏"):
        check_warehouse(published)


@pytest.fixture()
def small_disk(tmp_path):
    """A 64 MiB tmpfs: needs root and a kernel that lets this process mount."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("需要 root 权限挂载一个小的 tmpfs 来模拟磁盘写满")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"无法挂载 tmpfs 模拟磁盘写满: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_a_full_disk_during_publication_leaves_the_previous_publication_intact(small_disk):
    warehouse = small_disk / "wh.duckdb"
    conn = duckdb.connect(str(warehouse))
    conn.execute("CREATE SCHEMA mart")
    conn.execute("CREATE TABLE mart.fct_order_reconciliation AS SELECT 'O' || i AS order_id FROM range(1000) t(i)")
    conn.close()
    first = publish_mart(warehouse, as_of="2025-03-01 09:00:00")
    before = first.published_path.read_bytes()

    conn = duckdb.connect(str(warehouse))  # the next run's mart is much larger
    conn.execute("CREATE OR REPLACE TABLE mart.fct_order_reconciliation AS "
                 "SELECT md5(i::VARCHAR) AS order_id FROM range(400000) t(i)")
    conn.execute("CHECKPOINT")
    conn.close()
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(free - 2_000_000, 0))

    with pytest.raises(PublishError, match="磁盘空间不足"):
        publish_mart(warehouse, as_of="2025-03-02 09:00:00")
    published = default_published_path(warehouse)
    assert published.read_bytes() == before
    assert not list(small_disk.glob("*.tmp-*"))
    reader = duckdb.connect(str(published), read_only=True)
    assert reader.execute("SELECT count(*) FROM mart.fct_order_reconciliation").fetchone()[0] == 1000
    reader.close()

    filler.unlink()
    assert publish_mart(warehouse, as_of="2025-03-02 09:00:00").row_counts["fct_order_reconciliation"] == 400000


def test_recon_run_on_a_damaged_warehouse_says_how_to_recover(tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    warehouse.write_bytes(b"DUCK" + os.urandom(40_000))
    (tmp_path / "landing").mkdir()
    completed = subprocess.run(
        [str(RECON), "run", "--landing", str(tmp_path / "landing"), "--warehouse", str(warehouse),
         "--as-of", "2025-03-01T09:00:00"], capture_output=True, text=True)
    assert completed.returncode == 1
    assert "已损坏" in completed.stderr and "recon rebuild" in completed.stderr


# --- on the demo: a lost or damaged warehouse comes back the same -----------------------------


def warehouse_tables(path: Path, schemas=("raw", "matching", "mart")) -> dict[str, list]:
    """Every row of every table of these schemas, sorted: two warehouses compare equal when
    they hold the same data."""
    with duckdb.connect(str(path), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN "
            f"({', '.join(repr(s) for s in schemas)}) AND table_type = 'BASE TABLE' ORDER BY 1, 2").fetchall()
        return {f"{s}.{t}": sorted(conn.execute(f'SELECT * FROM "{s}"."{t}"').fetchall(), key=repr) for s, t in tables}


@pytest.fixture(scope="module")
def demo_warehouse(tmp_path_factory):
    from recon_pipeline.demo.generator import generate_demo

    root = tmp_path_factory.mktemp("recovery")
    summary = generate_demo(root, seed=7)
    warehouse = root / "recon.duckdb"
    done = subprocess.run([str(RECON), "run", "--landing", str(root / "landing"), "--warehouse", str(warehouse),
                           "--as-of", str(summary.as_of)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root, warehouse, str(summary.as_of), warehouse_tables(warehouse)


@pytest.mark.e2e
def test_rebuild_from_a_backup_after_drops_were_deleted_gives_the_same_warehouse(demo_warehouse, tmp_path):
    root, warehouse, as_of, expected = demo_warehouse
    landing = tmp_path / "landing"
    shutil.copytree(root / "landing", landing)
    work = tmp_path / "recon.duckdb"
    shutil.copy(warehouse, work)
    assert subprocess.run([str(RECON), "backup", str(tmp_path / "backup"), "--warehouse", str(work)],
                          capture_output=True, text=True).returncode == 0
    # The oldest CRM and bank drops are gone from the landing zone: only raw history has them now.
    for source in ("crm_contracts", "bank_transactions"):
        for day in sorted((landing / source).iterdir())[:5]:
            shutil.rmtree(day)
    work.write_bytes(work.read_bytes()[: work.stat().st_size // 3])  # and the warehouse is damaged
    done = subprocess.run([str(RECON), "rebuild", "--landing", str(landing), "--warehouse", str(work),
                           "--as-of", as_of, "--from-backup", str(tmp_path / "backup")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert warehouse_tables(work) == expected


@pytest.mark.e2e
def test_rebuild_of_a_damaged_warehouse_from_the_landing_zone(demo_warehouse, tmp_path):
    root, warehouse, as_of, expected = demo_warehouse
    work = tmp_path / "recon.duckdb"
    shutil.copy(warehouse, work)
    size = work.stat().st_size
    with work.open("r+b") as handle:
        handle.seek(size // 4)
        handle.write(b"\xff" * (size // 2))
    done = subprocess.run([str(RECON), "run", "--landing", str(root / "landing"), "--warehouse", str(work),
                           "--as-of", as_of], capture_output=True, text=True)
    assert done.returncode == 1 and "recon rebuild" in done.stderr
    done = subprocess.run([str(RECON), "rebuild", "--landing", str(root / "landing"), "--warehouse", str(work),
                           "--as-of", as_of], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "损坏的仓库文件已移到" in done.stdout
    assert warehouse_tables(work) == expected
