"""`recon extract` as cron calls it: exit codes, one line per failure, environment variables."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import yaml

RECON = [sys.executable, "-m", "recon_pipeline.cli"]


def recon(*args, env=None):
    return subprocess.run([*RECON, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_recon_extract(tmp_path):
    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE crm_middle (order_id TEXT, amount TEXT, updated_at TEXT)")
        db.execute("INSERT INTO crm_middle VALUES ('25SH00001', '100.00', '2025-05-05 10:00:00')")
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump(sort_keys=False, data={"extract": {
        "crm_contracts": {"kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle"},
        "erp_invoices": {"kind": "sql", "url_env": "RECON_ERP_DB_URL", "table": "inv"},
    }}), encoding="utf-8")
    landing = tmp_path / "landing"
    env = {"RECON_CRM_DB_URL": f"sqlite:///{database}", "RECON_ERP_DB_URL": f"sqlite:///{database}",
           "RECON_LANDING_DIR": str(landing), "RECON_SETTINGS": str(settings)}

    only = recon("extract", "--source", "crm_contracts", "--as-of", "2025-05-06T00:30:00", env=env)
    assert only.returncode == 0, only.stderr
    assert "crm_contracts/2025-05-06/extract-003000.parquet" in only.stdout
    again = recon("extract", "--source", "crm_contracts", "--as-of", "2025-05-06T00:30:00", env=env)
    assert again.returncode == 0 and "无新数据" in again.stdout

    everything = recon("extract", "--landing", str(landing), "--as-of", "2025-05-06T00:30:00", "--settings", str(settings),
                       env={"RECON_CRM_DB_URL": env["RECON_CRM_DB_URL"], "RECON_ERP_DB_URL": env["RECON_ERP_DB_URL"]})
    assert everything.returncode == 1
    assert everything.stderr.strip().splitlines() == ["错误: erp_invoices: 查询失败: no such table: inv"]

    unknown = recon("extract", "--source", "bank", "--as-of", "2025-05-06", env=env)
    assert unknown.returncode == 1 and "没有名为 bank 的提取项" in unknown.stderr

    settings.write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    nothing = recon("extract", "--as-of", "2025-05-06", env=env)
    assert nothing.returncode == 1 and "没有 extract: 项" in nothing.stderr
