"""Jobs, schedules and the landing-zone sensor.

Times are in the settings' time zone (Asia/Shanghai). Every run carries its as-of as the
`recon/as_of` tag: the schedule's tick time, so a late or retried run evaluates the same moment;
a run launched without it gets its launch time (see resources.run_as_of). The schedules run
`nightly_reconciliation`, the whole pipeline, so each of them publishes like `recon run`.
"""


import hashlib
import json
from pathlib import Path

import dagster as dg

from recon_pipeline.ingest.loader import drop_files, list_drops
from recon_pipeline.orchestration.close_assets import CLOSE_JOB_SELECTION
from recon_pipeline.orchestration.ingest_assets import daily_partitions
from recon_pipeline.orchestration.resources import AS_OF_TAG, ReconResource
from recon_pipeline.settings import load_settings

_settings = load_settings()
TIMEZONE = _settings.timezone

ingest_selection = dg.AssetSelection.groups("ingest")
# Extraction (group `extract`, only when configured) runs on its own schedule, before these.
pipeline_selection = dg.AssetSelection.all() - CLOSE_JOB_SELECTION - dg.AssetSelection.groups("extract")
models_selection = pipeline_selection - ingest_selection

nightly_job = dg.define_asset_job(
    "nightly_reconciliation", selection=pipeline_selection,
    description=(
        "Everything `recon run` does, at the run's as-of (tag recon/as_of, else the launch time): "
        "ingest every drop dated on or before it, dbt staging, matching, dbt marts, health and "
        "alerts, publish the read-only mart, notify."
    ),
)
ingest_job = dg.define_asset_job(
    "ingest_drops", selection=ingest_selection,
    description="Load one day's landing drops into raw history (the landing sensor's runs).",
)
refresh_job = dg.define_asset_job(
    "refresh_reconciliation", selection=models_selection,
    description="Rebuild staging, matching, marts, alerts and the publication at the run's as-of (no ingest).",
)


def _tick_tags(context: dg.ScheduleEvaluationContext) -> dict[str, str]:
    return {AS_OF_TAG: context.scheduled_execution_time.isoformat()}


@dg.schedule(job=nightly_job, cron_schedule="0 1 * * *", execution_timezone=TIMEZONE,
             description="每晚 01:00: 读取落地文件、重建对账报表与预警、发布")
def nightly_reconciliation_schedule(context: dg.ScheduleEvaluationContext):
    return dg.RunRequest(tags=_tick_tags(context))


@dg.schedule(job=nightly_job, cron_schedule="0 17 * * *", execution_timezone=TIMEZONE,
             description="每天 17:00: 差额清单（完整运行，as-of 为 17:00）")
def diff_list_schedule(context: dg.ScheduleEvaluationContext):
    return dg.RunRequest(tags=_tick_tags(context))


@dg.schedule(job=nightly_job, cron_schedule="*/10 9-18 * * 1-5", execution_timezone=TIMEZONE,
             description="工作时间每 10 分钟刷新健康看板（未变的批次跳过；数据未变时不重跑数据测试）")
def health_refresh_schedule(context: dg.ScheduleEvaluationContext):
    # Every tick runs, even with no new drop: its as-of is a different result (the health board's
    # row for it, the alert workflow's time limits, legs closing), which is what the refresh is
    # for. The run itself does only what that requires (stages.plan): no data tests, matching
    # only the lines the move touches; a retried tick (same as-of) stops after ingestion.
    return dg.RunRequest(tags=_tick_tags(context))


def _drop_signature(files: list[Path]) -> str:
    """Cheap change signature for polling (names, sizes, mtimes); ingestion hashes content."""
    parts = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha1(json.dumps(parts).encode()).hexdigest()[:16]


@dg.sensor(job=ingest_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="落地目录出现新的或变更的批次时，立即读取该日期的分区")
def landing_drop_sensor(context: dg.SensorEvaluationContext, recon: ReconResource):
    landing = recon.landing_path
    if not landing.is_dir():
        return dg.SkipReason(f"落地目录不存在: {landing}")
    seen = json.loads(context.cursor) if context.cursor else {}
    changed_days: dict[str, list[str]] = {}
    for source, day in list_drops(landing)[0]:
        signature = _drop_signature(drop_files(landing, source, day))
        key = f"{source}/{day.isoformat()}"
        if seen.get(key) != signature:
            seen[key] = signature
            changed_days.setdefault(day.isoformat(), []).append(source)
    context.update_cursor(json.dumps(seen, sort_keys=True))
    known_days = set(daily_partitions.get_partition_keys())
    beyond: dict[str, list[str]] = {}
    for day, sources in sorted(changed_days.items()):
        # The run key names the exact file versions, so the same change never runs twice.
        versions = ",".join(f"{s}={seen[f'{s}/{day}']}" for s in sorted(sources))
        if day not in known_days:  # after the partitions' end (the last run's as-of): see below
            beyond[f"{day}:{versions}"] = sources
            continue
        yield dg.RunRequest(
            run_key=f"{day}:{versions}",
            partition_key=day,
            asset_selection=[dg.AssetKey(["raw", s]) for s in sources],
        )
    if beyond:
        # Drops dated after the partitions end are loaded by one run without a partition (every
        # new drop up to its launch time); the partitions grow when the code location reloads.
        yield dg.RunRequest(
            run_key="sync:" + hashlib.sha1("|".join(sorted(beyond)).encode()).hexdigest()[:16],
            asset_selection=sorted({dg.AssetKey(["raw", s]) for sources in beyond.values() for s in sources}),
        )


@dg.sensor(job=refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description="读取完成后刷新对账报表")
def refresh_after_ingest_sensor(context: dg.SensorEvaluationContext):
    """After ingestion runs succeed, rebuild the models once (near-real-time)."""
    records = context.instance.get_run_records(
        dg.RunsFilter(job_name=ingest_job.name, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    if not records:
        return dg.SkipReason("尚无成功的读取任务")
    latest = records[0].dagster_run.run_id
    if context.cursor == latest:
        return dg.SkipReason("没有新的读取任务")
    context.update_cursor(latest)
    return dg.RunRequest(run_key=f"after:{latest}")


schedules = [nightly_reconciliation_schedule, diff_list_schedule, health_refresh_schedule]
sensors = [landing_drop_sensor, refresh_after_ingest_sensor]
jobs = [nightly_job, ingest_job, refresh_job]


@dg.run_failure_sensor(description="运行失败时通过已配置的邮件 / 群机器人通知数据工程师",
                       default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_notification(context: dg.RunFailureSensorContext, recon: ReconResource):
    from recon_pipeline.alerts import notify

    error = context.failure_event.message or "未知错误"
    subject = f"[对账流水线] 运行失败: {context.dagster_run.job_name}"
    body = f"任务 {context.dagster_run.job_name} 运行失败（run {context.dagster_run.run_id[:8]}）。\n{error}"
    delivered = notify.send_operator_message(recon.settings(), subject, body)
    context.log.info(f"运行失败通知已发送到 {delivered} 个渠道")


sensors.append(run_failure_notification)
