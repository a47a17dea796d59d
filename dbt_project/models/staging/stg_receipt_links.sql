-- The matching engine's links (matching.receipt_links), passed through for the marts: the only
-- place the seam is read with source().
select
    account_no,
    txn_id,
    customer_id,
    order_id,
    {{ money('allocated_amount') }} as allocated_amount,
    match_method,
    match_score,
    match_status,
    evidence
from {{ source('matching', 'receipt_links') }}
