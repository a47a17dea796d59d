-- Current state of each CRM order / contract (upsert rule), as of the run.
select
    order_id,
    contract_no,
    customer_id,
    customer_name,
    salesperson_id,
    region_code,
    industry,
    {{ money('amount') }} as amount,
    currency,
    status,
    signed_at,
    approval_status,
    approval_submitted_at,
    approval_updated_at,
    updated_at,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'crm_contracts'), ['order_id']) }} as current_contracts
