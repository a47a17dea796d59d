"""The Dagster code location: assembles assets, resources, jobs, schedules and sensors."""

from __future__ import annotations

import dagster as dg

from recon_pipeline.orchestration.alert_assets import health_metrics, open_alerts
from recon_pipeline.orchestration.automation import jobs, schedules, sensors
from recon_pipeline.orchestration.cli_hints import explain_partition_errors
from recon_pipeline.orchestration.close_assets import close_job, month_end_close_schedule, period_adjustments, period_close
from recon_pipeline.orchestration.dbt_assets import dbt_marts, dbt_staging
from recon_pipeline.orchestration.extract_assets import extract_assets, extract_jobs, extract_schedules, with_extract_upstream
from recon_pipeline.orchestration.ingest_assets import ingest_assets
from recon_pipeline.orchestration.matching_assets import receipt_links
from recon_pipeline.orchestration.publish_assets import alert_notifications, published_mart
from recon_pipeline.orchestration.resources import EngineResource, ReconResource

explain_partition_errors()

defs = dg.Definitions(
    assets=[*extract_assets, *with_extract_upstream(ingest_assets), dbt_staging, receipt_links, dbt_marts,
            period_adjustments, health_metrics, open_alerts, published_mart, alert_notifications, period_close],
    resources={
        "recon": ReconResource(engine=EngineResource()),
    },
    jobs=[*jobs, close_job, *extract_jobs],
    schedules=[*schedules, month_end_close_schedule, *extract_schedules],
    sensors=sensors,
    # One DuckDB writer at a time: steps run one after another in the run's process.
    executor=dg.in_process_executor,
)
