-- Current decision per feedback id (the latest decided_at wins, then the latest drop).
select
    feedback_id,
    account_no,
    txn_id,
    customer_id,
    order_id,
    decision,
    decided_by,
    decided_at,
    comment,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'match_feedback'), ['feedback_id'], version_column='decided_at') }} as current_feedback
