-- Every version of every CRM order received by the as-of (not only the current one): the order
-- page's history of status, approval and amount changes reads it.
select
    order_id,
    {{ money('amount') }} as amount,
    status,
    signed_at,
    approval_status,
    approval_submitted_at,
    approval_updated_at,
    updated_at,
    _drop_date,
    _source_file,
    _row_number
from {{ source('raw', 'crm_contracts') }}
where _drop_date <= {{ as_of_date() }}
