"""`recon run` as a cron user calls it: exit codes, one-line errors, determinism."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

RECON = [sys.executable, "-m", "recon_pipeline.cli"]


def recon(*args, env=None):
    return subprocess.run([*RECON, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def small_landing(root: Path) -> Path:
    landing = root / "landing"
    for source, content in {
        "crm_contracts": "order_id,customer_id,salesperson_id,amount,status,signed_at,updated_at\n"
                         "25SH00007,C1,S1,500.00,signed,2025-03-01 10:00:00,2025-03-01 10:00:00\n",
        "bank_transactions": "account_no,txn_id,txn_time,amount,counterparty_name,memo\n"
                             "6222,T1,2025-03-03 10:00:00,500.00,上海某某贸易有限公司,货款 订单25SH00007\n"
                             "6222,T2,2025-03-03 11:00:00,oops,上海某某贸易有限公司,\n",
    }.items():
        folder = landing / source / "2025-03-03"
        folder.mkdir(parents=True)
        (folder / f"{source}.csv").write_text(content, encoding="utf-8")
    return landing


def test_invalid_as_of_is_one_line_error(tmp_path):
    result = recon("run", "--landing", str(tmp_path), "--warehouse", str(tmp_path / "w.duckdb"), "--as-of", "tomorrow")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "as-of" in result.stderr


def test_missing_landing_dir_is_one_line_error(tmp_path):
    result = recon("run", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb"), "--as-of", "2025-03-05")
    assert result.returncode == 1
    assert "落地目录不存在" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.e2e
def test_run_twice_gives_same_warehouse_and_env_vars_work(tmp_path):
    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    env = {"RECON_LANDING_DIR": str(landing), "RECON_WAREHOUSE": str(warehouse)}
    first = recon("run", "--as-of", "2025-03-05T09:00:00", env=env)
    assert first.returncode == 0, first.stderr
    assert "隔离 1 行" in first.stdout

    def snapshot():
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            tables = conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('raw', 'matching', 'mart') ORDER BY 1, 2").fetchall()
            return {t: sorted(map(str, conn.execute(f'SELECT * FROM "{t[0]}"."{t[1]}"').fetchall())) for t in tables}

    before = snapshot()
    second = recon("run", "--as-of", "2025-03-05T09:00:00", env=env)
    assert second.returncode == 0, second.stderr
    assert snapshot() == before
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM raw.quarantine").fetchone()[0] == 1


@pytest.mark.e2e
def test_unreadable_drop_fails_with_reason_and_keeps_mart(tmp_path):
    landing = small_landing(tmp_path)
    warehouse = tmp_path / "w.duckdb"
    assert recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-03-05").returncode == 0
    bad = landing / "bank_transactions" / "2025-03-04"
    bad.mkdir()
    (bad / "broken.csv").write_bytes(b"\x00\x01binary")
    result = recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-03-05")
    assert result.returncode == 1
    assert "broken.csv" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM mart.fct_order_reconciliation").fetchone()[0] == 1
