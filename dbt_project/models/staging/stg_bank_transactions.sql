-- Bank lines deduplicated on (account_no, txn_id): overlapping downloads keep one line, the
-- latest received (bank lines carry no updated_at).
select
    account_no,
    txn_id,
    txn_time,
    {{ money('amount') }} as amount,
    currency,
    counterparty_name,
    counterparty_account,
    memo,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'bank_transactions'), ['account_no', 'txn_id'], version_column=none) }} as current_lines
