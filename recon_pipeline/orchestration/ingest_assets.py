"""One daily-partitioned asset per landing source: load that day's drop into raw history."""


import warnings
from datetime import timedelta

import dagster as dg

from recon_pipeline.ingest import DropError, load_drop
from recon_pipeline.settings import load_settings
from recon_pipeline.sources import SOURCES
from recon_pipeline.orchestration.resources import ReconResource
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
        window = context.partition_time_window  # half-open [start, end)
        day, loaded, quarantined, files = window.start.date(), 0, 0, 0
        with connect(recon.warehouse_path) as conn:
            while day < window.end.date():
                try:
                    result = load_drop(conn, recon.landing_path, source, day, settings)
                except DropError as exc:
                    raise dg.Failure(description=str(exc)) from None
                loaded += result.rows_loaded
                quarantined += result.rows_quarantined
                files += len(result.files)
                day += timedelta(days=1)
        if quarantined:
            context.log.warning(f"{source}: {quarantined} 行被隔离（见 raw.quarantine）")
        return dg.MaterializeResult(
            metadata={"files": files, "rows_loaded": loaded, "rows_quarantined": quarantined}
        )

    return ingest


ingest_assets = [_ingest_asset(source) for source in SOURCES]
