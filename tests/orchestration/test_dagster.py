"""The Dagster code location: asset keys other tools depend on, and a real in-process run."""

from decimal import Decimal

import dagster as dg
import pytest

from recon_pipeline.definitions import defs
from recon_pipeline.orchestration.close_assets import CLOSE_JOB_SELECTION
from recon_pipeline.orchestration.resources import AS_OF_TAG, ReconResource
from recon_pipeline.warehouse import connect


ASSET_KEYS = [
    "intermediate/int_credit_allocations", "intermediate/int_order_finance_leg", "intermediate/int_order_invoices",
    "intermediate/int_order_legs", "intermediate/int_order_receipts", "intermediate/int_salesperson_period_activity",
    "mart/alerts", "mart/diff_list", "mart/dim_customers", "mart/dim_salespeople", "mart/fct_alert_actions",
    "mart/fct_invoices", "mart/fct_legal_archive", "mart/fct_match_feedback", "mart/fct_order_events",
    "mart/fct_order_reconciliation", "mart/fct_receipt_matches", "mart/fct_writeoffs",
    "mart/health_metrics", "mart/period_adjustments", "mart/period_close", "mart/salesperson_period_summary",
    "matching/receipt_links",
    "notify/alert_notifications",
    "publish/published_mart",
    "raw/alert_actions", "raw/bank_transactions", "raw/crm_contracts", "raw/customers", "raw/erp_invoices",
    "raw/finance_writeoffs", "raw/legal_archive", "raw/match_feedback", "raw/salespeople",
    "staging/stg_alert_actions", "staging/stg_bank_transactions", "staging/stg_crm_contract_versions",
    "staging/stg_crm_contracts", "staging/stg_customers", "staging/stg_erp_invoices",
    "staging/stg_finance_writeoffs", "staging/stg_legal_archive", "staging/stg_match_feedback", "staging/stg_salespeople",
]
# The lineage reads left to right; an asset's group may only depend on its own or an earlier one.
GROUP_ORDER = ["extract", "ingest", "staging", "matching", "intermediate", "mart", "close", "alerts", "publish", "notify"]


def test_asset_keys_are_stable():
    # Schedules, BI and run history depend on these keys: changing one is a breaking change.
    # This is the default configuration; each `extract:` entry adds `extract/<entry>`
    # (test_extract_assets.py).
    keys = sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
    assert keys == ASSET_KEYS


def test_lineage_runs_left_to_right_with_no_loop():
    # Regression: the matching output came back into dbt as a staging model, so the graph ran
    # staging -> matching -> staging and the UI drew matching to the left of staging.
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        for parent in node.parent_keys:
            parent_group = graph.get(parent).group_name
            assert GROUP_ORDER.index(parent_group) <= GROUP_ORDER.index(node.group_name), (parent, key)
    links = dg.AssetKey(["matching", "receipt_links"])
    assert {k.path[0] for k in graph.get(links).child_keys} == {"intermediate"}


def test_matching_sits_between_staging_and_marts():
    graph = defs.resolve_asset_graph()
    links = dg.AssetKey(["matching", "receipt_links"])
    assert dg.AssetKey(["staging", "stg_bank_transactions"]) in graph.get(links).parent_keys
    mart = dg.AssetKey(["mart", "fct_receipt_matches"])
    ancestors = set()
    frontier = [mart]
    while frontier:
        key = frontier.pop()
        for parent in graph.get(key).parent_keys:
            if parent not in ancestors:
                ancestors.add(parent)
                frontier.append(parent)
    assert links in ancestors


def test_dbt_asset_checks_are_described_and_readably_named():
    # Regression: the UI showed "No description provided" and names cut off mid-word.
    specs = {spec.key.name: spec for assets in defs.assets for spec in getattr(assets, "check_specs", [])}
    assert len(specs) > 40
    assert all(spec.description for spec in specs.values())
    assert max(len(name) for name in specs) <= 70
    # A description written in the test's yml wins over the generated one.
    assert specs["fct_order_reconciliation__closed_iff_status_closed"].description.startswith("An order is closed")
    assert specs["fct_receipt_matches__order_id__has_parent_row"].description == (
        "Every `order_id` exists in fct_order_reconciliation.order_id.")
    assert specs["fct_receipt_matches__match_method__known_value"].description.startswith("`match_method` is one of: memo_order_id")


def test_schedules_and_sensors_are_registered():
    assert {s.name for s in defs.schedules} >= {
        "nightly_reconciliation_schedule", "diff_list_schedule", "health_refresh_schedule"}
    assert {s.name for s in defs.sensors} >= {"landing_drop_sensor"}


@pytest.mark.e2e
def test_assets_materialize_in_process(tmp_path):
    landing = tmp_path / "landing"
    (landing / "bank_transactions" / "2025-03-03").mkdir(parents=True)
    (landing / "crm_contracts" / "2025-03-03").mkdir(parents=True)
    (landing / "bank_transactions" / "2025-03-03" / "b.csv").write_text(
        "account_no,txn_id,txn_time,amount,counterparty_name,memo\n"
        "6222,T1,2025-03-03 10:00:00,500.00,上海某某贸易有限公司,货款 25-sh-7\n", encoding="utf-8")
    (landing / "crm_contracts" / "2025-03-03" / "c.csv").write_text(
        "order_id,customer_id,salesperson_id,amount,status,signed_at,updated_at\n"
        "25SH00007,C1,S1,500.00,signed,2025-03-01 10:00:00,2025-03-01 10:00:00\n", encoding="utf-8")
    warehouse = tmp_path / "w.duckdb"
    recon = ReconResource(landing_dir=str(landing), warehouse=str(warehouse))
    resources = {**defs.resources, "recon": recon}
    instance = dg.DagsterInstance.ephemeral()
    ingest = [a for a in defs.assets if getattr(a, "partitions_def", None) is not None]
    result = dg.materialize(ingest, resources=resources, partition_key="2025-03-03", instance=instance)
    assert result.success
    models = [a for a in defs.assets if getattr(a, "partitions_def", None) is None]
    result = dg.materialize(
        models, resources=resources, instance=instance, tags={AS_OF_TAG: "2025-03-05T09:00:00"},
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups("ingest") - CLOSE_JOB_SELECTION,
    )
    assert result.success
    with connect(warehouse, read_only=True) as conn:
        row = conn.execute(
            "SELECT order_id, allocated_amount, match_method FROM mart.fct_receipt_matches WHERE txn_id = 'T1'"
        ).fetchone()
    assert row == ("25SH00007", Decimal("500.00"), "memo_order_id")
