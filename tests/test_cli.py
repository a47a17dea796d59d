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


@pytest.mark.e2e
def test_any_as_of_works_before_inside_and_after_the_data(tmp_path):
    from recon_pipeline.demo.generator import generate_demo

    generate_demo(tmp_path / "demo", seed=7)
    landing, warehouse = tmp_path / "demo" / "landing", tmp_path / "w.duckdb"
    published = tmp_path / "w.published.duckdb"

    def run_at(as_of):
        result = recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", as_of)
        assert result.returncode == 0, result.stderr
        with duckdb.connect(str(published), read_only=True) as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM mart.{t}").fetchone()[0]
                      for t in ("fct_order_reconciliation", "fct_receipt_matches", "alerts", "salesperson_period_summary")}
            published_as_of = str(conn.execute("SELECT max(as_of) FROM meta.publication").fetchone()[0])
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            latest_drop = conn.execute("SELECT max(_drop_date) FROM staging.stg_crm_contracts").fetchone()[0]
        return result, counts, published_as_of, latest_drop

    # Before every drop: empty marts, exit 0, and a warning that nothing was dated on or before it.
    early, counts, published_as_of, _ = run_at("2024-12-01T09:00:00")
    assert "没有日期在 as-of 2024-12-01 09:00:00 当天或之前的批次" in early.stdout
    assert counts["fct_order_reconciliation"] == counts["fct_receipt_matches"] == counts["alerts"] == 0
    assert published_as_of == "2024-12-01 09:00:00"

    # Far after the data: everything received is visible.
    _, late, _, _ = run_at("2030-01-01T00:00:00")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        received_orders = conn.execute("SELECT count(DISTINCT order_id) FROM raw.crm_contracts").fetchone()[0]
    assert late["fct_order_reconciliation"] == received_orders > 100

    # Inside the window (the case: earlier than some drops), after the late run.
    _, inside, published_as_of, latest_drop = run_at("2025-02-28T16:00:00")
    assert 0 < inside["fct_order_reconciliation"] < late["fct_order_reconciliation"]
    assert str(latest_drop) <= "2025-02-28" and published_as_of == "2025-02-28 16:00:00"


@pytest.mark.e2e
def test_a_failing_dbt_test_is_one_line_without_colour_codes(tmp_path):
    # dbt colours its unit-test diff ("actual differs from expected"); cron logs must not get it.
    import shutil

    from recon_pipeline.settings import DBT_PROJECT_DIR

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    staging = project / "models" / "staging" / "_staging.yml"
    staging.write_text(staging.read_text(encoding="utf-8").replace(
        "        - {writeoff_id: W2, status: active}", "        - {writeoff_id: W2, status: reversed}"), encoding="utf-8")
    landing = small_landing(tmp_path)
    result = recon("run", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb"), "--as-of", "2025-03-05",
                   env={"RECON_DBT_PROJECT_DIR": str(project)})
    assert result.returncode == 1
    assert "stg_finance_writeoffs_latest_drop_wins_without_updated_at" in result.stderr
    assert "\x1b" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
