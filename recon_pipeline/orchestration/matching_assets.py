"""Payer matching and allocation between the staging and mart dbt models."""


import dagster as dg

from recon_pipeline.matching.seam import refresh_receipt_links
from recon_pipeline.orchestration.resources import ReconResource, run_as_of
from recon_pipeline.warehouse import connect

MATCHING_INPUTS = [
    dg.AssetKey(["staging", name])
    for name in (
        "stg_bank_transactions", "stg_customers", "stg_crm_contracts", "stg_erp_invoices", "stg_finance_writeoffs",
        "stg_match_feedback",
    )
]


@dg.asset(
    key=dg.AssetKey(["matching", "receipt_links"]),
    deps=MATCHING_INPUTS,
    group_name="matching",
    kinds={"python", "duckdb"},
    description="Every bank line linked to a customer and allocated to orders (the matching seam).",
    pool="warehouse",
)
def receipt_links(context: dg.AssetExecutionContext, recon: ReconResource) -> dg.MaterializeResult:
    settings = recon.settings()
    with connect(recon.warehouse_path) as conn:
        links = refresh_receipt_links(conn, run_as_of(context, settings), settings)
    by_status = links.groupby("match_status").size().to_dict()
    by_method = links.groupby("match_method").size().to_dict()
    credits = links[links["allocated_cents"] > 0].drop_duplicates(["account_no", "txn_id"])
    linked = credits[credits["match_status"].isin(["auto_linked", "confirmed"])]
    return dg.MaterializeResult(
        metadata={
            "rows": len(links),
            "by_status": dg.MetadataValue.json({k: int(v) for k, v in by_status.items()}),
            "by_method": dg.MetadataValue.json({k: int(v) for k, v in by_method.items()}),
            "suggestions": int(by_status.get("suggested", 0)),
            "auto_link_rate": round(len(linked) / len(credits), 4) if len(credits) else 0.0,
        }
    )
