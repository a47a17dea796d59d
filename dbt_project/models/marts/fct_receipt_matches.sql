-- One row per bank credit and order it is allocated to; one row with null order_id for a credit
-- (or the unallocated remainder of one) allocated to no order. Every credit of the bank appears.

select
    allocations.account_no,
    allocations.txn_id,
    allocations.customer_id,
    allocations.order_id,
    allocations.allocated_amount,
    allocations.match_method,
    allocations.match_score,
    allocations.match_status,
    -- extras
    allocations.txn_time,
    allocations.amount,
    allocations.counterparty_name,
    allocations.counterparty_account,
    allocations.memo,
    allocations.evidence,
    allocations.is_received,
    orders.salesperson_id,
    {{ cutoff_period('allocations.txn_time') }} as cutoff_period,
    {{ as_of_timestamp() }} as as_of
from {{ ref('int_credit_allocations') }} as allocations
left join {{ ref('stg_crm_contracts') }} as orders
    on allocations.order_id = orders.order_id
