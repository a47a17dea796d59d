"""Alerts and the health board as assets downstream of the marts, with health checks."""

import dagster as dg

from recon_pipeline.alerts import health
from recon_pipeline.alerts import rules as alerts
from recon_pipeline.orchestration.resources import ReconResource, run_as_of
from recon_pipeline.warehouse import connect

MART_INPUTS = [
    dg.AssetKey(["mart", name])
    for name in ("fct_order_reconciliation", "fct_receipt_matches", "salesperson_period_summary", "diff_list")
]
HEALTH_KEY = dg.AssetKey(["mart", "health_metrics"])


@dg.asset(
    key=HEALTH_KEY,
    deps=MART_INPUTS,
    group_name="alerts",
    kinds={"python", "duckdb"},
    description="Health board metrics at the run's as-of (and mart.customer_collection_health).",
    pool="warehouse",
    check_specs=[dg.AssetCheckSpec("health_thresholds", asset=HEALTH_KEY,
                                   description="Every health metric is within its threshold (green).")],
)
def health_metrics(context: dg.AssetExecutionContext, recon: ReconResource):
    settings = recon.settings()
    with connect(recon.warehouse_path) as conn:
        metrics = health.refresh_health(conn, run_as_of(context, settings), settings)
    red = metrics[metrics["status"] == "red"]
    yield dg.MaterializeResult(
        metadata={row.metric: dg.MetadataValue.text(f"{row.value} ({row.status})") for row in metrics.itertuples()}
    )
    yield dg.AssetCheckResult(
        check_name="health_thresholds",
        passed=red.empty,
        severity=dg.AssetCheckSeverity.ERROR,  # shown red in the UI; not blocking: the board still updates
        metadata={"red_metrics": dg.MetadataValue.json(red["metric"].tolist())},
        description="红灯指标: " + "、".join(red["metric"]) if not red.empty else "全部正常",
    )


@dg.asset(
    key=dg.AssetKey(["mart", "alerts"]),
    deps=[*MART_INPUTS, HEALTH_KEY],
    group_name="alerts",
    kinds={"python", "duckdb"},
    description="Open alerts at the run's as-of; mart.alert_history keeps first/last seen and resolution.",
    pool="warehouse",
)
def open_alerts(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    settings = recon.settings()
    with connect(recon.warehouse_path) as conn:
        alerts.refresh_alerts(conn, run_as_of(context, settings), settings)
        counts = alerts.open_alert_counts(conn)
    return dg.MaterializeResult(metadata={k: int(v) for k, v in counts.items()})
