-- Current state of each write-off (核销). Write-offs carry no updated_at: the latest drop wins.
select
    writeoff_id,
    txn_id,
    order_id,
    invoice_no,
    {{ money('amount') }} as amount,
    confirmed_by,
    confirmed_at,
    status,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'finance_writeoffs'), ['writeoff_id'], version_column=none) }} as current_writeoffs
