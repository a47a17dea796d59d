-- The 17:00 difference list (差额清单) as of the run: signed contracts with no money received,
-- credits matched to no contract, and archive records whose order is not in the CRM.

with contract_without_receipt as (

    select
        'contract_without_receipt' as diff_type,
        order_id as entity_id,
        contract_amount as amount,
        cast(null as {{ dbt.type_string() }}) as account_no,
        order_id,
        customer_id,
        salesperson_id,
        '已签约合同未收到回款' as description
    from {{ ref('fct_order_reconciliation') }}
    where sales_leg_closed_at is not null
      and received_amount <= 0

),

credits as (

    select
        account_no,
        txn_id,
        max(amount) as amount,
        max(customer_id) as customer_id,
        max(case when is_received then 1 else 0 end) as has_contract
    from {{ ref('int_credit_allocations') }}
    where txn_time <= {{ as_of_timestamp() }}
    group by account_no, txn_id

),

receipt_without_contract as (

    select
        'receipt_without_contract' as diff_type,
        txn_id as entity_id,
        amount,
        account_no,
        cast(null as {{ dbt.type_string() }}) as order_id,
        customer_id,
        cast(null as {{ dbt.type_string() }}) as salesperson_id,
        '回款未匹配到合同' as description
    from credits
    where has_contract = 0

),

archive_without_order as (

    select
        'archive_without_order' as diff_type,
        archive.archive_no as entity_id,
        cast(null as decimal(18, 2)) as amount,
        cast(null as {{ dbt.type_string() }}) as account_no,
        archive.order_id,
        cast(null as {{ dbt.type_string() }}) as customer_id,
        cast(null as {{ dbt.type_string() }}) as salesperson_id,
        '归档记录在CRM中没有对应订单' as description
    from {{ ref('stg_legal_archive') }} as archive
    left join {{ ref('stg_crm_contracts') }} as contracts
        on archive.order_id = contracts.order_id
    where contracts.order_id is null

),

differences as (

    select * from contract_without_receipt
    union all
    select * from receipt_without_contract
    union all
    select * from archive_without_order

)

select
    {{ as_of_date() }} as as_of_date,
    diff_type,
    entity_id,
    {{ money('amount') }} as amount,
    account_no,
    order_id,
    customer_id,
    salesperson_id,
    description,
    -- Stable across runs for the same difference: what the dashboard's responses refer to.
    {{ dbt.concat(["diff_type", "':'", "coalesce(account_no, '')", "':'", "entity_id"]) }} as diff_id,
    {{ as_of_timestamp() }} as as_of
from differences
