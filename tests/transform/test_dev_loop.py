"""The analysts' door: `recon dbt ...` builds a development copy at the last production run's as-of; production
is written only by the pipeline."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from recon_pipeline.settings import DBT_PROJECT_DIR
from recon_pipeline.transform.dbt_runner import dbt_work_dir
from recon_pipeline.transform.dev_loop import DevLoopError, dev_dbt_command, dev_warehouse_path
from tests.test_cli import recon, small_landing


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_without_a_production_run_there_is_nothing_to_copy(tmp_path):
    with pytest.raises(DevLoopError, match="尚无生产运行记录"):
        dev_dbt_command(["build"], tmp_path / "w.duckdb")


@pytest.mark.e2e
def test_recon_dbt_builds_the_dev_copy_at_the_last_runs_as_of_and_never_touches_production(tmp_path):
    landing, warehouse = small_landing(tmp_path), tmp_path / "w.duckdb"
    assert recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-03-05T09:00:00").returncode == 0
    before = digest(warehouse)

    built = recon("dbt", "build", "--select", "fct_order_reconciliation", "--warehouse", str(warehouse))
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr
    assert digest(warehouse) == before
    dev = dev_warehouse_path(warehouse)
    assert dev == tmp_path / "w.dev.duckdb"
    with duckdb.connect(str(dev), read_only=True) as conn:
        # The last production run's as-of, not the project's 2099 default.
        assert str(conn.execute("SELECT max(as_of) FROM mart.fct_order_reconciliation").fetchone()[0]) == "2025-03-05 09:00:00"

    # dbt docs with the overview page, in the warehouse's dbt folder (not dbt_project/target).
    docs = recon("dbt", "docs", "generate", "--warehouse", str(warehouse))
    assert docs.returncode == 0, docs.stdout[-2000:]
    target = dbt_work_dir(warehouse) / "dev-target"
    assert (target / "index.html").is_file() and (target / "catalog.json").is_file()
    assert "doc.recon.__overview__" in json.loads((target / "manifest.json").read_text())["docs"]
    assert digest(warehouse) == before


@pytest.mark.e2e
def test_dbt_by_hand_on_the_prod_target_is_refused(tmp_path):
    landing, warehouse = small_landing(tmp_path), tmp_path / "w.duckdb"
    assert recon("run", "--landing", str(landing), "--warehouse", str(warehouse), "--as-of", "2025-03-05T09:00:00").returncode == 0
    before = digest(warehouse)
    env = {k: v for k, v in os.environ.items() if k != "RECON_PIPELINE_RUN"}
    env["RECON_WAREHOUSE"] = str(warehouse)
    by_hand = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--target", "prod", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(tmp_path / "t"), "--log-path", str(tmp_path / "l")],
        env=env, capture_output=True, text=True, timeout=600)
    assert by_hand.returncode != 0
    assert "only the pipeline writes it" in by_hand.stdout
    assert digest(warehouse) == before
    assert recon("dbt", "build", "--target", "prod", "--warehouse", str(warehouse)).returncode == 1
