-- Every bank credit (amount > 0) with each of its allocations from the matching engine; a credit
-- the engine has not seen gets one unmatched row (method none, the whole amount unallocated).

with credits as (

    select
        account_no,
        txn_id,
        txn_time,
        amount,
        counterparty_name,
        counterparty_account,
        memo
    from {{ ref('stg_bank_transactions') }}
    where amount > 0

),

links as (

    select * from {{ source('matching', 'receipt_links') }}

)

select
    credits.account_no,
    credits.txn_id,
    links.customer_id,
    links.order_id,
    {{ money('coalesce(links.allocated_amount, credits.amount)') }} as allocated_amount,
    coalesce(links.match_method, 'none') as match_method,
    coalesce(links.match_score, 0) as match_score,
    coalesce(links.match_status, 'unmatched') as match_status,
    links.order_id is not null
        and coalesce(links.match_status, 'unmatched') in ('auto_linked', 'confirmed') as is_received,
    credits.txn_time,
    credits.amount,
    credits.counterparty_name,
    credits.counterparty_account,
    credits.memo,
    links.evidence
from credits
left join links
    on credits.account_no = links.account_no
   and credits.txn_id = links.txn_id
