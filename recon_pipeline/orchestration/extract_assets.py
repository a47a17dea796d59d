"""Extraction as Dagster assets: one daily-partitioned asset per configured `extract:` entry.

`extract/<entry>` sits upstream of `raw/<source>` (the ingest asset of the source its drops go
to), in the group `extract`, left of ingest in the graph. The job `extract_sources` runs them
and the schedule `nightly_extract_schedule` starts it at 00:30, before the 01:00 nightly run,
with the tick as the as-of. Without `extract:` entries (the default settings) there are none.

The partition is the drop date. The run's as-of is used when it falls on that day, else the
end of the day: extraction takes a source as it is now, so a backfill of a range writes one
drop, dated by the range's last day. Extraction writes only the landing zone, never the
warehouse, so these assets stay out of the `warehouse` pool and never wait for a pipeline run.
"""


from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import Sequence

import dagster as dg

from recon_pipeline import stages
from recon_pipeline.extract.config import ExtractSpec, extract_specs
from recon_pipeline.orchestration.ingest_assets import daily_partitions
from recon_pipeline.orchestration.resources import AS_OF_TAG, ReconResource, as_of_metadata, run_context
from recon_pipeline.settings import Settings, load_settings

EXTRACT_GROUP = "extract"
DEFAULT_EXTRACT_CRON = "30 0 * * *"  # before the nightly run at 01:00


def extract_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([EXTRACT_GROUP, name])


def _extract_asset(spec: ExtractSpec) -> dg.AssetsDefinition:
    where = {"sql": "a database table or query", "sftp": "an SFTP delivery", "http": "an HTTP API"}[spec.kind]

    @dg.asset(
        key=extract_key(spec.name),
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=EXTRACT_GROUP,
        kinds={"python", spec.kind},
        description=f"Pulls `{spec.name}` from {where} into the landing zone as a `{spec.source}` drop "
                    f"(`{spec.source}/<drop date>/`); idempotent, no partial files.",
    )
    def extract(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
        run = run_context(context, recon)
        day = (context.partition_time_window.end - timedelta(days=1)).date()  # the window's last day
        if run.as_of.date() != day:
            run = replace(run, as_of=datetime.combine(day, time(23, 59, 59)))
        (result,) = stages.extract(run, entry=spec.name).results
        return dg.MaterializeResult(metadata={
            **as_of_metadata(run), "files": dg.MetadataValue.json(result.files),
            "rows": result.rows if result.rows is not None else len(result.files), "note": result.note or "-",
        })

    return extract


def build_extract_definitions(settings: Settings):
    """(assets, jobs, schedules) for the settings' `extract:` entries; all empty without any."""
    specs = extract_specs(settings)
    if not specs:
        return [], [], []
    assets = [_extract_asset(spec) for spec in specs]
    job = dg.define_asset_job(
        "extract_sources", selection=dg.AssetSelection.groups(EXTRACT_GROUP),
        description="Pull every configured source (extract:) into the landing zone, dated by the run's as-of.",
    )

    @dg.schedule(job=job, cron_schedule=str(settings.raw.get("extract_cron") or DEFAULT_EXTRACT_CRON),
                 execution_timezone=settings.timezone, description="每晚 00:30: 从业务系统提取数据（在 01:00 对账之前）")
    def nightly_extract_schedule(context: dg.ScheduleEvaluationContext):
        tick = context.scheduled_execution_time
        return dg.RunRequest(partition_key=tick.date().isoformat(), tags={AS_OF_TAG: tick.isoformat()})

    return assets, [job], [nightly_extract_schedule]


def with_extract_upstream(ingest_assets: Sequence[dg.AssetsDefinition], settings: Settings | None = None) -> list[dg.AssetsDefinition]:
    """The ingest assets, each `raw/<source>` depending on the extract assets that feed it."""
    feeding: dict[str, list[dg.AssetKey]] = {}
    for spec in extract_specs(settings or _settings):
        feeding.setdefault(spec.source, []).append(extract_key(spec.name))
    if not feeding:
        return list(ingest_assets)

    def add_deps(spec: dg.AssetSpec) -> dg.AssetSpec:
        upstream = feeding.get(spec.key.path[-1], [])
        return spec.merge_attributes(deps=upstream) if spec.key.path[0] == "raw" and upstream else spec

    return [asset.map_asset_specs(add_deps) for asset in ingest_assets]


_settings = load_settings()
extract_assets, extract_jobs, extract_schedules = build_extract_definitions(_settings)
