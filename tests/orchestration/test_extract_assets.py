"""Extract assets in the Dagster code location: keys, lineage, schedule, and a real materialization.

The pinned asset keys of test_dagster.py are the default configuration (no `extract:` entries);
each configured entry adds `extract/<entry>`, upstream of `raw/<source>`.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import dagster as dg
import pytest
import yaml

from recon_pipeline.orchestration.extract_assets import build_extract_definitions, with_extract_upstream
from recon_pipeline.orchestration.ingest_assets import ingest_assets
from recon_pipeline.orchestration.resources import AS_OF_TAG, ReconResource
from recon_pipeline.settings import load_settings
from recon_pipeline.warehouse import connect
from tests.orchestration.test_dagster import ASSET_KEYS

EXTRACT = {"extract": {
    "crm_contracts": {"kind": "sql", "url_env": "RECON_CRM_DB_URL", "table": "crm_middle"},
    "bank_icbc": {"kind": "sftp", "source": "bank_transactions", "host": "127.0.0.1", "port": 2222, "user": "bank",
                  "key_file_env": "RECON_BANK_SFTP_KEY", "remote_dir": "/outbox", "glob": "*"},
}}


@pytest.fixture()
def settings_file(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(EXTRACT, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.e2e
def test_code_location_with_extract_entries(settings_file):
    # The code location as `dagster dev` loads it, with the user's settings file.
    script = """
import json
from recon_pipeline.definitions import defs
graph = defs.resolve_asset_graph()
print(json.dumps({
    "keys": sorted(k.to_user_string() for k in graph.get_all_asset_keys()),
    "raw_bank_parents": sorted(k.to_user_string() for k in graph.get(__import__("dagster").AssetKey(["raw", "bank_transactions"])).parent_keys),
    "groups": {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys() if k.path[0] == "extract"},
    "schedules": sorted(s.name for s in defs.schedules),
    "jobs": {j.name: sorted(k.to_user_string() for k in j.selection.resolve(graph)) for j in defs.jobs if hasattr(j, "selection")},
}))
"""
    env = {**os.environ, "RECON_SETTINGS": str(settings_file)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["keys"] == sorted([*ASSET_KEYS, "extract/bank_icbc", "extract/crm_contracts"])
    assert found["raw_bank_parents"] == ["extract/bank_icbc"]
    assert set(found["groups"].values()) == {"extract"}
    assert "nightly_extract_schedule" in found["schedules"]
    assert found["jobs"]["extract_sources"] == ["extract/bank_icbc", "extract/crm_contracts"]
    # The reconciliation jobs never reach out to the source systems themselves.
    for name, keys in found["jobs"].items():
        if name != "extract_sources":
            assert not any(k.startswith("extract/") for k in keys), name


def test_schedule_extracts_before_the_nightly_run_dated_by_its_tick(settings_file):
    _, _, (schedule,) = build_extract_definitions(load_settings(settings_file))
    assert schedule.cron_schedule == "30 0 * * *" and schedule.execution_timezone == "Asia/Shanghai"
    tick = datetime(2025, 5, 6, 0, 30, tzinfo=ZoneInfo("Asia/Shanghai"))
    request = schedule(dg.build_schedule_context(scheduled_execution_time=tick))
    assert request.partition_key == "2025-05-06"
    assert request.tags[AS_OF_TAG] == "2025-05-06T00:30:00+08:00"


def test_extract_then_ingest_materialize_in_process(tmp_path, monkeypatch):
    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE crm_middle (订单号 TEXT, 合同金额 TEXT, 状态 TEXT, 更新时间 TEXT)")
        db.execute("INSERT INTO crm_middle VALUES ('25SH00001', '1,234.50', '已签约', '2025-05-05 10:00:00')")
    monkeypatch.setenv("RECON_CRM_DB_URL", f"sqlite:///{database}")
    settings_path = tmp_path / "settings.yaml"
    settings_path.write_text(yaml.safe_dump({"extract": {"crm_contracts": EXTRACT["extract"]["crm_contracts"]}}),
                             encoding="utf-8")
    settings = load_settings(settings_path)
    assets, _, _ = build_extract_definitions(settings)
    ingest = with_extract_upstream(ingest_assets, settings)
    landing, warehouse = tmp_path / "landing", tmp_path / "w.duckdb"
    recon = ReconResource(landing_dir=str(landing), warehouse=str(warehouse), settings_file=str(settings_path))
    result = dg.materialize(
        [*assets, *ingest], resources={"recon": recon}, partition_key="2025-05-06",
        tags={AS_OF_TAG: "2025-05-06T00:30:00"}, instance=dg.DagsterInstance.ephemeral(),
        selection=dg.AssetSelection.assets(dg.AssetKey(["extract", "crm_contracts"]), dg.AssetKey(["raw", "crm_contracts"])),
    )
    assert result.success
    assert (landing / "crm_contracts" / "2025-05-06" / "extract-003000.parquet").is_file()
    metadata = result.asset_materializations_for_node("extract__crm_contracts")[0].metadata
    assert metadata["files"].value == ["crm_contracts/2025-05-06/extract-003000.parquet"]
    with connect(warehouse, read_only=True) as conn:
        assert conn.execute("SELECT order_id, amount, status FROM raw.crm_contracts").fetchall() == [
            ("25SH00001", Decimal("1234.50"), "signed")]
