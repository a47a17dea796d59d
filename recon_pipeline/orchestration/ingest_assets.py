"""Ingestion: one daily-partitioned asset per landing source (`raw/<source>`), loaded by one step.

The step calls `stages.ingest`, like `recon run`:
- in a run without a partition (the nightly job, a schedule, "Materialize all"), it loads every
  new or changed drop dated on or before the run's as-of (late drops included) and records a
  materialization for each drop date it holds, so the partitions show what raw holds;
- in a partitioned run (the landing sensor, a backfill of a range), it reloads exactly those
  drop dates.
"""


import warnings
from datetime import timedelta

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

_settings = load_settings()
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_settings.partitions_start_date, timezone=_settings.timezone, end_offset=1
)

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
    for source in sources:
        loaded = [r for r in report.loaded if r.source == source]
        quarantined = sum(r.rows_quarantined for r in loaded)
        if quarantined:
            context.log.warning(f"{source}: {quarantined} 行被隔离（见 raw.quarantine）")
        yield dg.MaterializeResult(
            asset_key=RAW_KEYS[source],
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
