"""One daily-partitioned asset per landing source: load that day's drop into raw history."""


import warnings
from datetime import timedelta

import dagster as dg

from recon_pipeline.ingest.loader import load_drops
from recon_pipeline.orchestration.resources import ReconResource
from recon_pipeline.settings import load_settings
from recon_pipeline.sources import SOURCES
from recon_pipeline.warehouse import connect

# Single-run backfills (one run loads a range of days) are "beta" in Dagster but what we want.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

_settings = load_settings()
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=_settings.partitions_start_date, timezone=_settings.timezone, end_offset=1
)


def _ingest_asset(source: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["raw", source]),
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingest",
        kinds={"python", "duckdb"},
        description=f"Every version of every `{source}` row received, by drop date (raw.{source}).",
        pool="warehouse",
    )
    def ingest(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
        settings = recon.settings()
        window = context.partition_time_window  # half-open [start, end): one day, or a backfill range
        days = [window.start.date() + timedelta(days=n) for n in range((window.end.date() - window.start.date()).days)]
        with connect(recon.warehouse_path) as conn:
            loaded, failed = load_drops(conn, recon.landing_path, [(source, day) for day in days], settings)
        if failed:
            raise dg.Failure(description="；".join(failed))
        quarantined = sum(r.rows_quarantined for r in loaded)
        if quarantined:
            context.log.warning(f"{source}: {quarantined} 行被隔离（见 raw.quarantine）")
        return dg.MaterializeResult(
            metadata={
                "files": sum(len(r.files) for r in loaded),
                "rows_loaded": sum(r.rows_loaded for r in loaded),
                "rows_quarantined": quarantined,
            }
        )

    return ingest


ingest_assets = [_ingest_asset(source) for source in SOURCES]
