"""Month-end close in Dagster: the adjustments asset of every nightly run, and the close job with its own schedule.

- `mart/period_adjustments` (nightly_reconciliation): `stages.close`, after the marts, before
  the publication: the automatic close when `close.auto_close` is on, then the adjustments.
- `mart/period_close` (job `month_end_close`, not in the nightly job): closes the period named by
  the tag `recon/period`, or every period due at the run's as-of, as of the last run, then
  republishes. `month_end_close_schedule` fires every day at `close.due_hour` and asks for a run
  only on a period's due day (the N-th working day after its cutoff), so the close happens once.
  The person closing is the tag `recon/closed_by`, else "Dagster 定时封账"; closed_at is the
  run's as-of (the schedule's tick, or the launch time of a manual run).
"""

from datetime import datetime

import dagster as dg

from recon_pipeline import stages
from recon_pipeline.close.commands import close_command, close_due_command
from recon_pipeline.close.periods import CloseError, CloseSettings, period_due_on
from recon_pipeline.orchestration.alert_assets import MART_INPUTS
from recon_pipeline.orchestration.resources import AS_OF_TAG, ReconResource, as_of_metadata, run_context
from recon_pipeline.settings import load_settings

ADJUSTMENTS_KEY = dg.AssetKey(["mart", "period_adjustments"])
PERIOD_CLOSE_KEY = dg.AssetKey(["mart", "period_close"])
PERIOD_TAG = "recon/period"
CLOSED_BY_TAG = "recon/closed_by"
SCHEDULED_CLOSER = "Dagster 定时封账"
# The close job's own asset: never part of the nightly or refresh selections.
CLOSE_JOB_SELECTION = dg.AssetSelection.assets(PERIOD_CLOSE_KEY)


@dg.asset(
    key=ADJUSTMENTS_KEY,
    deps=MART_INPUTS,
    group_name="close",
    kinds={"python", "duckdb"},
    description=(
        "Adjustments (调整) against closed periods, booked in the open period of the run's as-of; "
        "also mart.period_close_reconciliation (closed + adjustments = live)."
    ),
    pool="warehouse",
)
def period_adjustments(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    run = run_context(context, recon)
    report = stages.close(run)
    return dg.MaterializeResult(metadata={
        **as_of_metadata(run),
        "booked_period": report.current_period,
        "booked": report.booked,
        "closed_periods": dg.MetadataValue.json(report.closed_periods),
        "auto_closed": dg.MetadataValue.json([o.period for o in report.auto_closed]),
    })


@dg.asset(
    key=PERIOD_CLOSE_KEY,
    deps=[ADJUSTMENTS_KEY],
    group_name="close",
    kinds={"python", "duckdb"},
    description=(
        "The month-end close (封账): a period's figures frozen as of the last run (mart.period_close, "
        "period_close_orders, period_close_log). Run by the job month_end_close."
    ),
    pool="warehouse",
)
def period_close(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    run = run_context(context, recon)
    closed_by = context.run.tags.get(CLOSED_BY_TAG) or SCHEDULED_CLOSER
    period = context.run.tags.get(PERIOD_TAG)
    try:
        if period:
            outcomes = [close_command(run.warehouse, period, run.settings, closed_by, now=lambda: run.as_of,
                                      trigger="dagster")]
        else:
            outcomes = close_due_command(run.warehouse, run.as_of, run.settings, closed_by)
    except CloseError as exc:
        raise dg.Failure(description=str(exc)) from None
    for outcome in outcomes:
        context.log.info(outcome.message())
    if not outcomes:
        context.log.info("没有到期需要封账的期间")
    return dg.MaterializeResult(metadata={
        **as_of_metadata(run),
        "closed": dg.MetadataValue.json([o.period for o in outcomes if o.changed]),
        "unchanged": dg.MetadataValue.json([o.period for o in outcomes if not o.changed]),
        "versions": dg.MetadataValue.json({o.period: o.version for o in outcomes}),
    })


close_job = dg.define_asset_job(
    "month_end_close", selection=CLOSE_JOB_SELECTION,
    description="封账: freeze a period as of the last run (tag recon/period, else every period due at the as-of).",
)

_settings = load_settings()
_close_settings = CloseSettings.from_settings(_settings)


@dg.schedule(job=close_job, cron_schedule=f"0 {_close_settings.due_hour} * * *", execution_timezone=_settings.timezone,
             description=f"封账日（封关后第 {_close_settings.due_working_days} 个工作日）{_close_settings.due_hour}:00 自动封账")
def month_end_close_schedule(context: dg.ScheduleEvaluationContext):
    tick: datetime = context.scheduled_execution_time
    period = period_due_on(tick.date(), _settings.cutoff_hour, _close_settings)
    if period is None:
        return dg.SkipReason(f"{tick:%Y-%m-%d} 不是封账日")
    return dg.RunRequest(run_key=f"close:{period}", tags={AS_OF_TAG: tick.isoformat(), PERIOD_TAG: period})
