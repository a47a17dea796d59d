-- One row per finance write-off (current state, reversed ones included): what finance
-- confirmed against which bank line and order, by whom and when.
select
    writeoff_id,
    txn_id,
    order_id,
    invoice_no,
    amount,
    confirmed_by,
    confirmed_at,
    coalesce(status, 'active') as status
from {{ ref('stg_finance_writeoffs') }}
