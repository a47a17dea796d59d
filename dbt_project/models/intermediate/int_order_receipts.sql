-- Money received per order and bank line: the matching engine's auto_linked and confirmed
-- allocations (credits positive, linked refunds negative), for lines booked on or before the
-- as-of. Suggestions (fuzzy matches finance has not confirmed) are not money received.

with links as (

    select
        account_no,
        txn_id,
        order_id,
        allocated_amount,
        match_status
    from {{ source('matching', 'receipt_links') }}
    where order_id is not null
      and match_status in ('auto_linked', 'confirmed')

),

bank as (

    select account_no, txn_id, txn_time, amount
    from {{ ref('stg_bank_transactions') }}
    where txn_time <= {{ as_of_timestamp() }}

)

select
    links.order_id,
    links.account_no,
    links.txn_id,
    bank.txn_time,
    bank.amount as transaction_amount,
    {{ money('sum(links.allocated_amount)') }} as received_amount,
    max(case when links.match_status = 'confirmed' then 1 else 0 end) = 1 as is_confirmed
from links
inner join bank
    on links.account_no = bank.account_no
   and links.txn_id = bank.txn_id
group by
    links.order_id,
    links.account_no,
    links.txn_id,
    bank.txn_time,
    bank.amount
