"""The month-end close in Dagster: its schedule fires on the due day only, its job closes and republishes,
and the nightly job books the adjustments without ever closing a period itself."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb

from recon_pipeline.definitions import defs
from recon_pipeline.orchestration.close_assets import (
    ADJUSTMENTS_KEY, PERIOD_CLOSE_KEY, PERIOD_TAG, SCHEDULED_CLOSER, month_end_close_schedule, period_close,
)
from recon_pipeline.orchestration.resources import AS_OF_TAG, ReconResource
from tests.close.conftest import CloseWarehouse

SHANGHAI = ZoneInfo("Asia/Shanghai")


def tick(*args):
    context = dg.build_schedule_context(scheduled_execution_time=datetime(*args, tzinfo=SHANGHAI))
    return month_end_close_schedule.evaluate_tick(context)


def test_the_close_schedule_asks_for_a_run_on_the_due_day_only():
    # March 2025 ends on a Monday; its third working day after the cutoff is Thursday April 3.
    (request,) = tick(2025, 4, 3, 18, 0).run_requests
    assert request.tags[PERIOD_TAG] == "2025-03" and request.run_key == "close:2025-03"
    assert request.tags[AS_OF_TAG].startswith("2025-04-03T18:00:00")
    assert tick(2025, 4, 2, 18, 0).run_requests == []
    assert tick(2025, 4, 4, 18, 0).run_requests == []


def test_the_nightly_job_books_adjustments_and_never_closes():
    nightly = defs.resolve_job_def("nightly_reconciliation").asset_layer.selected_asset_keys
    assert ADJUSTMENTS_KEY in nightly and PERIOD_CLOSE_KEY not in nightly
    assert defs.resolve_job_def("month_end_close").asset_layer.selected_asset_keys == {PERIOD_CLOSE_KEY}
    assert "month_end_close_schedule" in {s.name for s in defs.schedules}


def test_the_close_job_closes_as_of_the_last_run_and_republishes(tmp_path):
    warehouse = CloseWarehouse(tmp_path / "recon.duckdb")
    warehouse.run("2025-03-05 17:00:00")
    resources = {"recon": ReconResource(warehouse=str(warehouse.path), landing_dir=str(tmp_path))}
    instance = dg.DagsterInstance.ephemeral()

    result = dg.materialize([period_close], resources=resources, instance=instance,
                            tags={AS_OF_TAG: "2025-03-05T18:00:00", PERIOD_TAG: "2025-02"})
    assert result.success
    # Without a period tag, every period due at the as-of and never closed: January.
    result = dg.materialize([period_close], resources=resources, instance=instance,
                            tags={AS_OF_TAG: "2025-03-06T18:00:00"})
    assert result.success
    metadata = result.asset_materializations_for_node("mart__period_close")[0].metadata
    assert metadata["closed"].value == ["2025-01"]

    published = tmp_path / "recon.published.duckdb"
    with duckdb.connect(str(published), read_only=True) as conn:
        log = conn.execute("SELECT period, action_at, action_by, as_of, trigger FROM mart.period_close_log ORDER BY period").fetchall()
    assert log == [
        ("2025-01", datetime(2025, 3, 6, 18), SCHEDULED_CLOSER, datetime(2025, 3, 5, 17), "dagster"),
        ("2025-02", datetime(2025, 3, 5, 18), SCHEDULED_CLOSER, datetime(2025, 3, 5, 17), "dagster"),
    ]
