"""Ingestion: one daily-partitioned asset per landing source (`raw/<source>`), loaded by one step.

The step calls `stages.ingest`, like `recon run`:
- in a run without a partition (the nightly job, a schedule, "Materialize all"), it loads every
  new or changed drop dated on or before the run's as-of (late drops included) and records a
  materialization for each drop date it holds, so the partitions show what raw holds;
- in a partitioned run (the landing sensor, a backfill of a range), it reloads exactly those
  drop dates.
Each source's materialization carries a data version, the fingerprint of its drops the as-of
sees: a run with nothing new reports the version it reported before.
"""


import warnings
from datetime import date, datetime, timedelta

import dagster as dg

from recon_pipeline import stages
from recon_pipeline.as_of import as_of_text
from recon_pipeline.ingest.loader import IngestReport, list_drops
from recon_pipeline.orchestration.resources import ReconResource, as_of_metadata, run_context
from recon_pipeline.progress import LogProgress, reporting
from recon_pipeline.settings import load_settings
from recon_pipeline.sources import SOURCES

# Single-run backfills (one run loads a range of days) are "beta" in Dagster but what we want.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

# Before any drop or run is known (a fresh install, tests) the window is this start to today.
FALLBACK_START = date(2024, 1, 1)


def partition_window(
    start_setting: str | None, drop_days: list[date], last_as_of: date | None, today: date
) -> tuple[date, date]:
    """The drop-date partitions [first, last] to show: from the setting or the earliest drop, to
    the last run's as-of date (else the latest drop), so the UI shows the data, not 2024-to-today."""
    first = date.fromisoformat(start_setting) if start_setting else (min(drop_days) if drop_days else None)
    last = last_as_of or (max(drop_days) if drop_days else None)
    if first is None and last is None:
        return FALLBACK_START, today
    first = first or min(last, today)
    last = max(last or first, first)
    return first, last


def _drop_partitions() -> dg.DailyPartitionsDefinition:
    settings = load_settings()
    where = ReconResource()  # the paths a run will use (RECON_LANDING_DIR, RECON_WAREHOUSE)
    drop_days = [day for _, day in list_drops(where.landing_path)[0]] if where.landing_path.is_dir() else []
    record = stages.read_run_record(where.warehouse_path)
    last_as_of = datetime.fromisoformat(record["as_of"]).date() if record else None
    first, last = partition_window(settings.partitions_start_date, drop_days, last_as_of, date.today())
    return dg.DailyPartitionsDefinition(
        start_date=first.isoformat(), end_date=(last + timedelta(days=1)).isoformat(), timezone=settings.timezone
    )


daily_partitions = _drop_partitions()

RAW_KEYS = {source: dg.AssetKey(["raw", source]) for source in SOURCES}


@dg.multi_asset(
    name="ingest_landing",
    specs=[
        dg.AssetSpec(
            key, partitions_def=daily_partitions, group_name="ingest", kinds={"python", "duckdb"},
            description=f"Every version of every `{source}` row received, by drop date (raw.{source}).",
        )
        for source, key in RAW_KEYS.items()
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    can_subset=True,
    pool="warehouse",
)
def ingest_landing(context: dg.AssetExecutionContext, recon: ReconResource):
    run = run_context(context, recon)
    sources = sorted(key.path[1] for key in context.selected_asset_keys)
    with reporting(LogProgress(context.log.info)):
        if context.has_partition_key:
            window = context.partition_time_window  # half-open [start, end): one day, or a backfill range
            days = [window.start.date() + timedelta(days=n) for n in range((window.end.date() - window.start.date()).days)]
            report = stages.ingest(run, sources=sources, days=days)
        else:
            report = stages.ingest(run, sources=sources)
            _record_drop_partitions(context, run, report, sources)
    # What each raw asset holds for this as-of (not for a partitioned run: it reloads some days).
    versions = {} if context.has_partition_key else stages.source_versions(run)
    for source in sources:
        loaded = [r for r in report.loaded if r.source == source]
        quarantined = sum(r.rows_quarantined for r in loaded)
        if quarantined:
            context.log.warning(f"{source}: {quarantined} 行被隔离（见 raw.quarantine）")
        yield dg.MaterializeResult(
            asset_key=RAW_KEYS[source],
            data_version=dg.DataVersion(versions.get(source, "no drops")) if versions else None,
            metadata={
                **as_of_metadata(run),
                "drops_loaded": len(loaded),
                "files": sum(len(r.files) for r in loaded),
                "rows_loaded": sum(r.rows_loaded for r in loaded),
                "rows_quarantined": quarantined,
            },
        )


def _record_drop_partitions(
    context: dg.AssetExecutionContext, run: stages.RunContext, report: IngestReport, sources: list[str]
) -> None:
    """Mark the drop dates up to the as-of as materialized partitions: the drops loaded now (with
    their counts) and those raw already holds but this instance has not recorded (loaded by
    `recon run`, or before the instance existed). Days without a drop stay "missing": there was
    nothing to load. (Dagster stores one event at a time, ~50 ms each here: only real drops.)"""
    known_days = set(daily_partitions.get_partition_keys())
    drops, _ = list_drops(run.landing_dir, run.as_of.date())
    loaded = {(r.source, r.drop_date): r for r in report.loaded}
    for source in sources:
        key = RAW_KEYS[source]
        recorded = context.instance.get_materialized_partitions(key)
        for drop_source, day in drops:
            drop = loaded.get((drop_source, day))
            if drop_source != source or day.isoformat() not in known_days or (drop is None and day.isoformat() in recorded):
                continue
            metadata = {"as_of": as_of_text(run.as_of)}
            metadata.update(
                {"files": len(drop.files), "rows_loaded": drop.rows_loaded, "rows_quarantined": drop.rows_quarantined}
                if drop else {"note": "already in raw (unchanged since it was loaded)"}
            )
            context.log_event(dg.AssetMaterialization(asset_key=key, partition=day.isoformat(), metadata=metadata))


ingest_assets = [ingest_landing]
