"""Dagster runs do only what their inputs require, like `recon run` (stages.plan): the same inputs and
as-of skip everything after ingestion, an as-of that moved rebuilds the models without their data
tests, a new drop does the whole work; each time the publication equals `recon run`'s.

Real parts: the demo's landing zone (small), a DuckDB warehouse, dbt, Dagster materialized in-process.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pytest

from recon_pipeline.as_of import parse_as_of
from recon_pipeline.definitions import defs
from recon_pipeline.orchestration.automation import pipeline_selection
from recon_pipeline.orchestration.matching_assets import RECEIPT_LINKS_KEY
from recon_pipeline.orchestration.publish_assets import PUBLISHED_KEY
from recon_pipeline.orchestration.resources import AS_OF_TAG, NO_CHANGE_TAG, ReconResource
from recon_pipeline.pipeline import run_pipeline
from recon_pipeline.publish.publication import default_published_path
from recon_pipeline.settings import load_settings
from recon_pipeline.transform.dbt_runner import dbt_work_dir
from tests.orchestration.test_nightly_job import published_tables

DAY = "2025-05-05T09:00:00"  # the demo's last day of drops (2025-05-06) is not visible yet
TICK = "2025-05-05T09:10:00"  # the working-hours schedule's next tick: only the as-of moved
NEXT_DAY = "2025-05-06T09:00:00"  # one new day of drops
STAGING = dg.AssetKey(["staging", "stg_bank_transactions"])
MART = dg.AssetKey(["mart", "fct_order_reconciliation"])
BANK = dg.AssetKey(["raw", "bank_transactions"])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    from recon_pipeline.demo.generator import generate_demo

    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, seed=23, n_bank_lines=200)
    return out / "landing"


class DagsterDoor:
    """`nightly_reconciliation`'s selection materialized in-process against one warehouse and instance."""

    def __init__(self, landing: Path, warehouse: Path):
        self.warehouse = warehouse
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {**defs.resources, "recon": ReconResource(landing_dir=str(landing), warehouse=str(warehouse))}

    def run(self, as_of: str) -> dg.ExecuteInProcessResult:
        result = dg.materialize(defs.assets, resources=self.resources, instance=self.instance,
                                tags={AS_OF_TAG: as_of}, selection=pipeline_selection)
        assert result.success
        return result

    def tags(self, result) -> dict:
        return self.instance.get_run_by_id(result.run_id).tags


def _materialized(result) -> set[dg.AssetKey]:
    return {event.asset_key for event in result.get_asset_materialization_events()}


def _data_version(result, key: dg.AssetKey) -> str:
    """The version the run's materialization of `key` reported (not a drop date's partition event)."""
    materialization = next(m for m in (e.step_materialization_data.materialization
                                       for e in result.get_asset_materialization_events())
                           if m.asset_key == key and m.partition is None)
    return materialization.tags["dagster/data_version"]


def _checks_run(result) -> int:
    """dbt's data tests evaluated in the run (the health board's own check is not one)."""
    return sum(1 for event in result.all_events if event.event_type_value == "ASSET_CHECK_EVALUATION"
               and event.event_specific_data.check_name != "health_thresholds")


@pytest.mark.e2e
def test_dagster_runs_do_what_their_inputs_require_and_publish_what_recon_run_does(landing, tmp_path):
    door = DagsterDoor(landing, tmp_path / "dagster" / "recon.duckdb")
    published = default_published_path(door.warehouse)
    dbt_log = dbt_work_dir(door.warehouse) / "logs" / "dbt.log"

    first = door.run(DAY)
    assert {STAGING, MART, RECEIPT_LINKS_KEY, PUBLISHED_KEY} <= _materialized(first)
    assert _checks_run(first) > 40  # dbt's data tests, as asset checks
    assert NO_CHANGE_TAG not in door.tags(first)
    before, log_size = _digest(published), dbt_log.stat().st_size

    # The same inputs and as-of again (a retried tick): nothing after ingestion runs.
    again = door.run(DAY)
    assert door.tags(again)[NO_CHANGE_TAG] == "true"
    assert not _materialized(again) & {STAGING, MART, RECEIPT_LINKS_KEY, PUBLISHED_KEY}
    assert _checks_run(again) == 0
    assert dbt_log.stat().st_size == log_size, "dbt was not invoked"
    assert _digest(published) == before, "the publication is left as it was, byte for byte"
    observed = door.instance.fetch_observations(PUBLISHED_KEY, limit=1).records[0].asset_observation
    assert observed.metadata["outcome"].value == "无变化，沿用上次结果"
    # The assets' last materialization is still the run that computed them (what the UI shows).
    assert door.instance.get_latest_materialization_event(PUBLISHED_KEY).run_id == first.run_id
    # Ingestion reports the same data version: what was built from it is not stale in the UI.
    assert _data_version(again, BANK) == _data_version(first, BANK)

    # The working-hours tick ten minutes later: the models and rules again, the data tests not.
    tick = door.run(TICK)
    assert NO_CHANGE_TAG not in door.tags(tick)
    assert {STAGING, MART, PUBLISHED_KEY} <= _materialized(tick)
    assert _checks_run(tick) == 0
    links = tick.asset_materializations_for_node("matching__receipt_links")[0].metadata
    assert links["incremental"].value is True
    assert _digest(published) != before  # a new as-of published (health board, time rules)

    # One new day of drops: everything, with the data tests.
    day = door.run(NEXT_DAY)
    assert {STAGING, MART, RECEIPT_LINKS_KEY, PUBLISHED_KEY} <= _materialized(day)
    assert _checks_run(day) > 40
    assert _data_version(day, BANK) != _data_version(first, BANK)

    # `recon run` through the same as-ofs publishes the same mart, table for table.
    settings = load_settings()
    cli_warehouse = tmp_path / "cli" / "recon.duckdb"
    for as_of in (DAY, TICK, NEXT_DAY):
        outcome = run_pipeline(landing, cli_warehouse, parse_as_of(as_of, settings.timezone), settings,
                               echo=lambda line: None)
        assert not outcome.skipped
    expected, actual = published_tables(default_published_path(cli_warehouse)), published_tables(published)
    assert sorted(actual) == sorted(expected)
    for table in expected:
        assert actual[table] == expected[table], f"mart.{table} differs between recon run and Dagster"


@pytest.mark.e2e
def test_what_is_asked_for_explicitly_is_done_even_with_nothing_new(landing, tmp_path):
    door = DagsterDoor(landing, tmp_path / "recon.duckdb")
    door.run(DAY)
    # Some dbt models (the UI's "Materialize selected"): those, and only those.
    customers = dg.AssetKey(["staging", "stg_customers"])
    result = dg.materialize(defs.assets, resources=door.resources, instance=door.instance,
                            tags={AS_OF_TAG: DAY}, selection=dg.AssetSelection.assets(customers))
    assert result.success
    assert _materialized(result) == {customers}
    # Some of its checks (the UI's "Execute checks"): those tests, nothing rebuilt.
    check = dg.AssetCheckKey(customers, "unique_stg_customers_customer_id")
    assert check in dg.AssetSelection.checks_for_assets(customers).resolve_checks(defs.resolve_asset_graph())
    checked = dg.materialize(defs.assets, resources=door.resources, instance=door.instance,
                             tags={AS_OF_TAG: DAY}, selection=dg.AssetSelection.checks(check))
    assert checked.success and not _materialized(checked)
    evaluations = [e.event_specific_data for e in checked.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [(e.asset_check_key, e.passed) for e in evaluations] == [(check, True)]
    # A full refresh (`recon run --full-refresh`; here the resource's full_refresh): everything, tested.
    door.resources = {**door.resources, "recon": ReconResource(
        landing_dir=str(landing), warehouse=str(door.warehouse), full_refresh=True)}
    full = door.run(DAY)
    assert NO_CHANGE_TAG not in door.tags(full)
    assert {STAGING, MART, PUBLISHED_KEY} <= _materialized(full) and _checks_run(full) > 40
    assert full.asset_materializations_for_node("matching__receipt_links")[0].metadata["incremental"].value is False
