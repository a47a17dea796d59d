"""Alerts and the health board as assets downstream of the marts (`stages.health`, `stages.alerts`)."""

import dagster as dg

from recon_pipeline import stages
from recon_pipeline.orchestration.resources import ReconResource, as_of_metadata, run_context

MART_INPUTS = [
    dg.AssetKey(["mart", name])
    for name in ("fct_order_reconciliation", "fct_receipt_matches", "salesperson_period_summary", "diff_list")
]
HEALTH_KEY = dg.AssetKey(["mart", "health_metrics"])
ALERTS_KEY = dg.AssetKey(["mart", "alerts"])


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
    run = run_context(context, recon)
    metrics = stages.health(run)
    red = [row["metric"] for row in metrics if row["status"] == "red"]
    yield dg.MaterializeResult(
        metadata={
            **as_of_metadata(run),
            **{row["metric"]: dg.MetadataValue.text(f"{row['value']} ({row['status']})") for row in metrics},
        }
    )
    yield dg.AssetCheckResult(
        check_name="health_thresholds",
        passed=not red,
        severity=dg.AssetCheckSeverity.ERROR,  # shown red in the UI; not blocking: the board still updates
        metadata={"red_metrics": dg.MetadataValue.json(red)},
        description="红灯指标: " + "、".join(red) if red else "全部正常",
    )


@dg.asset(
    key=ALERTS_KEY,
    deps=[*MART_INPUTS, HEALTH_KEY, dg.AssetKey(["mart", "fct_alert_actions"])],
    group_name="alerts",
    kinds={"python", "duckdb"},
    description="Open alerts at the run's as-of; mart.alert_history keeps first/last seen and resolution; "
                "mart.alert_sla the workflow's time limits (acknowledge, respond, resolve) against the actions.",
    pool="warehouse",
)
def open_alerts(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    run = run_context(context, recon)
    counts = stages.alerts(run)
    return dg.MaterializeResult(metadata={**as_of_metadata(run), **{k: int(v) for k, v in counts.items()}})
