"""The drop-date partitions show the data's window, not 2024-to-today; the landing sensor covers what lies beyond."""

import os
import subprocess
import sys
from datetime import date, timedelta

import dagster as dg

from recon_pipeline.orchestration.automation import landing_drop_sensor
from recon_pipeline.orchestration.ingest_assets import FALLBACK_START, partition_window
from recon_pipeline.orchestration.resources import ReconResource

TODAY = date(2026, 12, 1)
DROPS = [date(2025, 1, 3), date(2025, 5, 6), date(2025, 2, 1)]


def test_window_runs_from_the_earliest_drop_to_the_last_as_of():
    assert partition_window(None, DROPS, date(2025, 5, 6), TODAY) == (date(2025, 1, 3), date(2025, 5, 6))
    # An early as-of ends the window early: partitions after it would only show as missing.
    assert partition_window(None, DROPS, date(2025, 2, 28), TODAY) == (date(2025, 1, 3), date(2025, 2, 28))


def test_window_before_any_run_ends_at_the_latest_drop_and_the_setting_wins_the_start():
    assert partition_window(None, DROPS, None, TODAY) == (date(2025, 1, 3), date(2025, 5, 6))
    assert partition_window("2024-12-01", DROPS, None, TODAY) == (date(2024, 12, 1), date(2025, 5, 6))
    # An as-of before every drop still gives a window of one day at least.
    assert partition_window(None, DROPS, date(2024, 6, 1), TODAY) == (date(2025, 1, 3), date(2025, 1, 3))


def test_window_without_data_or_runs_is_the_fallback():
    assert partition_window(None, [], None, TODAY) == (FALLBACK_START, TODAY)


def test_the_code_location_reads_the_window_from_the_landing_zone_and_the_last_run(tmp_path):
    landing = tmp_path / "landing"
    for source, day in [("bank_transactions", "2025-01-03"), ("crm_contracts", "2025-03-10")]:
        (landing / source / day).mkdir(parents=True)
    warehouse = tmp_path / "w.duckdb"
    from recon_pipeline.stages import RunContext, write_run_record
    from recon_pipeline.settings import load_settings
    from datetime import datetime

    write_run_record(RunContext(landing, warehouse, datetime(2025, 2, 28, 16), load_settings()))
    probe = "from recon_pipeline.orchestration.ingest_assets import daily_partitions as d; k = d.get_partition_keys(); print(k[0], k[-1])"
    env = {**os.environ, "RECON_LANDING_DIR": str(landing), "RECON_WAREHOUSE": str(warehouse)}
    shown = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.split() == ["2025-01-03", "2025-02-28"]


def test_sensor_requests_a_partition_inside_the_window_and_a_sync_run_beyond_it(tmp_path):
    landing = tmp_path / "landing"
    inside, beyond = "2025-03-03", (date.today() + timedelta(days=3)).isoformat()
    for day in (inside, beyond):
        folder = landing / "bank_transactions" / day
        folder.mkdir(parents=True)
        (folder / "b.csv").write_text("account_no,txn_id,txn_time,amount\n6222,T1,2025-03-03 10:00:00,1.00\n", encoding="utf-8")
    recon = ReconResource(landing_dir=str(landing), warehouse=str(tmp_path / "w.duckdb"))
    with dg.build_sensor_context(resources={"recon": recon}) as context:
        requests = list(landing_drop_sensor(context))
    by_partition = {r.partition_key: r for r in requests}
    assert set(by_partition) == {inside, None}
    assert by_partition[None].asset_selection == [dg.AssetKey(["raw", "bank_transactions"])]
    # The same files seen again: nothing new.
    with dg.build_sensor_context(resources={"recon": recon}, cursor=context.cursor) as again:
        assert list(landing_drop_sensor(again)) == []
