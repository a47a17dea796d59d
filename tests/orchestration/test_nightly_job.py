"""The two front doors give the same publication: `recon run` and the Dagster job `nightly_reconciliation`.

The job runs exactly as the README documents it (and as acceptance runs it):
`RECON_LANDING_DIR=... RECON_WAREHOUSE=... dagster job execute -m recon_pipeline.definitions
-j nightly_reconciliation --tags '{"recon/as_of": "..."}'`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from recon_pipeline.orchestration.resources import AS_OF_TAG, run_as_of
from recon_pipeline.publish.publication import default_published_path

BIN = Path(sys.executable).parent
DEMO_AS_OF = "2025-05-06T09:00:00"


def published_tables(path: Path) -> dict[str, list]:
    with duckdb.connect(str(path), read_only=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'mart' ORDER BY 1").fetchall()]
        return {name: sorted(map(repr, conn.execute(f'SELECT * FROM mart."{name}"').fetchall())) for name in names}


def _nightly_job_command(landing: Path, warehouse: Path, dagster_home: Path, as_of: str):
    dagster_home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RECON_LANDING_DIR": str(landing), "RECON_WAREHOUSE": str(warehouse),
           "DAGSTER_HOME": str(dagster_home)}
    args = [str(BIN / "dagster"), "job", "execute", "-m", "recon_pipeline.definitions", "-j", "nightly_reconciliation",
            "--tags", json.dumps({AS_OF_TAG: as_of})]
    return args, env


def nightly_job_cli(landing: Path, warehouse: Path, dagster_home: Path, as_of: str) -> subprocess.CompletedProcess:
    """The README's command line, as acceptance runs it."""
    args, env = _nightly_job_command(landing, warehouse, dagster_home, as_of)
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)


def nightly_job_cli_process(landing: Path, warehouse: Path, dagster_home: Path, as_of: str) -> subprocess.Popen:
    args, env = _nightly_job_command(landing, warehouse, dagster_home, as_of)
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.e2e
def test_nightly_job_publishes_what_recon_run_publishes(tmp_path):
    from recon_pipeline.demo.generator import generate_demo

    generate_demo(tmp_path / "demo", seed=7)
    landing = tmp_path / "demo" / "landing"
    by_cli = tmp_path / "cli" / "recon.duckdb"
    by_dagster = tmp_path / "dagster" / "recon.duckdb"

    from recon_pipeline.settings import DBT_PROJECT_DIR

    dbt_target = DBT_PROJECT_DIR / "target"
    run_folders_before = {p.name for p in dbt_target.iterdir() if p.is_dir()} if dbt_target.is_dir() else set()
    cli = subprocess.run(
        [sys.executable, "-m", "recon_pipeline.cli", "run", "--landing", str(landing), "--warehouse", str(by_cli),
         "--as-of", DEMO_AS_OF], capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    job = nightly_job_cli(landing, by_dagster, tmp_path / "dagster_home", DEMO_AS_OF)
    assert job.returncode == 0, job.stderr[-3000:]
    assert "RUN_SUCCESS" in job.stderr + job.stdout
    # dagster-dbt writes into the warehouse's dbt folder, not a new dbt_project/target/<run id>.
    run_folders_after = {p.name for p in dbt_target.iterdir() if p.is_dir()} if dbt_target.is_dir() else set()
    assert run_folders_after <= run_folders_before | {"compiled", "run"}

    expected, actual = published_tables(default_published_path(by_cli)), published_tables(default_published_path(by_dagster))
    assert {"fct_order_reconciliation", "fct_receipt_matches", "alerts", "diff_list", "salesperson_period_summary",
            "health_metrics"} <= set(expected)
    assert sorted(actual) == sorted(expected)
    for table in expected:
        assert actual[table] == expected[table], f"mart.{table} differs between recon run and nightly_reconciliation"
    assert len(expected["fct_order_reconciliation"]) > 100
    with duckdb.connect(str(default_published_path(by_dagster)), read_only=True) as conn:
        assert str(conn.execute("SELECT DISTINCT as_of FROM meta.publication").fetchone()[0]) == "2025-05-06 09:00:00"

    # The run's instance shows it: the as-of in the metadata, the drop-date partitions loaded.
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    try:
        event = instance.get_latest_materialization_event(dg.AssetKey(["publish", "published_mart"]))
        assert event.asset_materialization.metadata["as_of"].value == "2025-05-06 09:00:00"
        partitions = instance.get_materialized_partitions(dg.AssetKey(["raw", "bank_transactions"]))
        drops = sorted(p.name for p in (landing / "bank_transactions").iterdir() if p.name <= "2025-05-06")
        assert sorted(partitions) == drops
    finally:
        instance.dispose()


@dg.asset
def as_of_probe(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from recon_pipeline.settings import load_settings

    return dg.MaterializeResult(metadata={"as_of": run_as_of(context, load_settings()).isoformat()})


def test_a_run_without_the_tag_uses_its_launch_time_and_shows_it():
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([as_of_probe], instance=instance)
    record = instance.get_run_record_by_id(result.run_id)
    launched = record.create_timestamp.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    shown = result.asset_materializations_for_node("as_of_probe")[0].metadata["as_of"].value
    assert shown == launched.replace(tzinfo=None, microsecond=0).isoformat()
    # The tag is added to the run, so its page and a re-execution show the same as-of.
    assert record.dagster_run.tags[AS_OF_TAG] == shown


def test_the_tag_sets_the_as_of_with_or_without_an_offset():
    instance = dg.DagsterInstance.ephemeral()
    for tag, expected in [("2025-02-28T16:00:00", "2025-02-28T16:00:00"),
                          ("2025-02-28T08:00:00Z", "2025-02-28T16:00:00")]:
        result = dg.materialize([as_of_probe], instance=instance, tags={AS_OF_TAG: tag})
        assert result.asset_materializations_for_node("as_of_probe")[0].metadata["as_of"].value == expected


@pytest.mark.e2e
def test_materialize_all_without_a_partition_says_what_to_run_instead(tmp_path):
    # Regression: `dagster asset materialize --select '*'` died with Dagster's CheckError traceback.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "RECON_WAREHOUSE": str(tmp_path / "w.duckdb"),
           "RECON_LANDING_DIR": str(tmp_path / "landing")}
    result = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "recon_pipeline.definitions", "--select", "*"],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "--partition" in result.stderr and "-j nightly_reconciliation" in result.stderr
