"""The close commands as finance runs them: exit codes, one-line reasons, the publication updated at once."""

import os
import subprocess
import sys

import duckdb
from openpyxl import load_workbook

RECON = [sys.executable, "-m", "recon_pipeline.cli"]


def recon(*args, env=None):
    return subprocess.run([*RECON, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def published(path, sql):
    with duckdb.connect(str(path.with_name(path.stem + ".published.duckdb")), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_close_reopen_and_statements_from_the_command_line(close_warehouse, tmp_path):
    close_warehouse.run("2025-03-04 09:00:00")
    warehouse = close_warehouse.path
    env = {"RECON_WAREHOUSE": str(warehouse)}

    refused = recon("close-period", "2025-03", env=env)
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1 and "当前未结束的期间" in refused.stderr

    closed = recon("close-period", "2025-02", "--by", "财务王五", env=env)
    assert closed.returncode == 0, closed.stderr
    assert "期间 2025-02 已封账（版本 1" in closed.stdout
    # BI sees the close at once: the publication was rebuilt.
    assert published(warehouse, "SELECT DISTINCT period, version, closed_by FROM mart.period_close") == [
        ("2025-02", 1, "财务王五")]

    again = recon("close-period", "2025-02", "--warehouse", str(warehouse))
    assert again.returncode == 0 and "未作任何更改" in again.stdout

    no_reason = recon("reopen-period", "2025-02", "--reason", "", env=env)
    assert no_reason.returncode == 1 and "原因" in no_reason.stderr

    reopened = recon("reopen-period", "2025-02", "--reason", "红字发票冲减，重新确认", "--by", "财务经理", env=env)
    assert reopened.returncode == 0, reopened.stderr
    assert published(warehouse, "SELECT action, action_by, reason FROM mart.period_close_log WHERE action = 'reopen'") == [
        ("reopen", "财务经理", "红字发票冲减，重新确认")]

    out = tmp_path / "statements"
    exported = recon("period-statements", "2025-02", "--out", str(out), env=env)
    assert exported.returncode == 0, exported.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == ["业绩确认单_2025-02_S01.xlsx", "业绩确认单_2025-02_S02.xlsx", "业绩确认单_2025-02_S03.xlsx"]
    sheet = load_workbook(out / files[0]).active
    assert "已重开" in sheet["A2"].value


def test_closing_a_missing_warehouse_is_one_line(tmp_path):
    result = recon("close-period", "2025-02", "--warehouse", str(tmp_path / "none.duckdb"))
    assert result.returncode == 1 and "找不到仓库文件" in result.stderr
    assert not (tmp_path / "none.duckdb").exists()
