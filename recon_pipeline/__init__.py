"""Sales-to-cash reconciliation pipeline (销售对账): landing zone -> ingest -> dbt -> matching -> marts -> alerts -> publication."""
