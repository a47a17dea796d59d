"""Payer matching and allocation between the staging and mart dbt models (`stages.match`)."""


import dagster as dg

from recon_pipeline import stages
from recon_pipeline.orchestration.resources import ReconResource, as_of_metadata, run_context
from recon_pipeline.progress import LogProgress, reporting

RECEIPT_LINKS_KEY = dg.AssetKey(["matching", "receipt_links"])
MATCHING_INPUTS = [
    dg.AssetKey(["staging", name])
    for name in (
        "stg_bank_transactions", "stg_customers", "stg_crm_contracts", "stg_erp_invoices", "stg_finance_writeoffs",
        "stg_match_feedback",
    )
]


@dg.asset(
    key=RECEIPT_LINKS_KEY,
    deps=MATCHING_INPUTS,
    group_name="matching",
    kinds={"python", "duckdb"},
    description="Every bank line linked to a customer and allocated to orders (the matching seam).",
    pool="warehouse",
)
def receipt_links(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    run = run_context(context, recon)
    with reporting(LogProgress(context.log.info)):
        links = stages.match(run)
    context.log.info(f"matching: {'full' if links.full else 'incremental'}, {links.evaluated_lines} bank lines evaluated")
    return dg.MaterializeResult(
        metadata={
            **as_of_metadata(run),
            "rows": links.rows,
            "by_status": dg.MetadataValue.json(links.by_status),
            "by_method": dg.MetadataValue.json(links.by_method),
            "suggestions": links.by_status.get("suggested", 0),
            "auto_link_rate": links.auto_link_rate,
            "incremental": not links.full,
            "evaluated_lines": links.evaluated_lines,
            "output_changed": links.changed,  # the marts' data tests run again (dbt_assets)
        }
    )
