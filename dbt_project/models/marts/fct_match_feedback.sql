-- Every decision finance made on a suggested payer match (confirm / reject / undo), with who
-- and when, up to the as-of: the review queue's history and its undo buttons read it.
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
    _drop_date as drop_date,
    _source_file as source_file
from {{ ref('stg_match_feedback') }}
where decision is not null
  and (decided_at is null or decided_at <= {{ as_of_timestamp() }})
