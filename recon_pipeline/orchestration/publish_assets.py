"""The end of the line: the read-only publication BI tools and the dashboard open, then notifications.

Same stages as `recon run` (`stages.publish`, `stages.notify`), after the marts and alerts.
"""

import dagster as dg

from recon_pipeline import stages
from recon_pipeline.orchestration.alert_assets import ALERTS_KEY, HEALTH_KEY, MART_INPUTS
from recon_pipeline.orchestration.close_assets import ADJUSTMENTS_KEY
from recon_pipeline.orchestration.resources import ReconResource, as_of_metadata, run_context

PUBLISHED_KEY = dg.AssetKey(["publish", "published_mart"])
NOTIFICATIONS_KEY = dg.AssetKey(["notify", "alert_notifications"])

# Everything the publication copies; an asset that writes a new mart table belongs here.
PUBLISHED_INPUTS = [*MART_INPUTS, ADJUSTMENTS_KEY, HEALTH_KEY, ALERTS_KEY]


@dg.asset(
    key=PUBLISHED_KEY,
    deps=PUBLISHED_INPUTS,
    group_name="publish",
    kinds={"python", "duckdb"},
    description=(
        "The `mart` schema copied into `<warehouse stem>.published.duckdb` (built aside, swapped in "
        "atomically): the only file BI tools and the dashboard open."
    ),
    pool="warehouse",
)
def published_mart(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    run = run_context(context, recon)
    stats = stages.publish(run)
    return dg.MaterializeResult(
        metadata={
            **as_of_metadata(run),
            "path": dg.MetadataValue.path(str(stats.published_path)),
            "tables": stats.table_count,
            "row_counts": dg.MetadataValue.json(stats.row_counts),
            "size_bytes": stats.size_bytes,
        }
    )


@dg.asset(
    key=NOTIFICATIONS_KEY,
    deps=[PUBLISHED_KEY],
    group_name="notify",
    kinds={"python"},
    description=(
        "New alerts sent once each by e-mail / webhooks (mart.alert_dispatch_log). Runs when the "
        "`recon` resource has notify (RECON_NOTIFY=1) or dry_run; otherwise it is skipped."
    ),
    pool="warehouse",
    output_required=False,
)
def alert_notifications(context: dg.AssetExecutionContext, recon: ReconResource):
    run = run_context(context, recon)
    summary = stages.notify(run)
    if summary is None:
        context.log.info("通知未开启（RECON_NOTIFY=1 或 recon 资源的 notify: true 开启），跳过")
        return
    context.log.info(summary.to_text())
    yield dg.MaterializeResult(metadata={**as_of_metadata(run), "summary": summary.to_text()})
