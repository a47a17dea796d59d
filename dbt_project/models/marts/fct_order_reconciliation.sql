-- One row per CRM order (all of them, cancelled and draft included): its three legs, money
-- invoiced / received / written off, and the period it is recognized in, as of the run.

with contracts as (

    select * from {{ ref('stg_crm_contracts') }}

),

customers as (

    select customer_id, customer_name from {{ ref('stg_customers') }}

),

salespeople as (

    select salesperson_id, name as salesperson_name from {{ ref('stg_salespeople') }}

),

writeoffs as (

    select
        order_id,
        sum(amount) as written_off_amount,
        count(*) as writeoff_count
    from {{ ref('stg_finance_writeoffs') }}
    where coalesce(status, 'active') = 'active'
      and order_id is not null
    group by order_id

),

orders as (

    select
        contracts.order_id,
        contracts.contract_no,
        contracts.customer_id,
        coalesce(customers.customer_name, contracts.customer_name) as customer_name,
        contracts.salesperson_id,
        salespeople.salesperson_name,
        contracts.region_code,
        contracts.industry,
        contracts.currency,
        {{ money('contracts.amount') }} as contract_amount,
        finance.invoiced_amount,
        finance.invoice_count,
        finance.received_amount,
        finance.received_credit_count,
        {{ money('coalesce(writeoffs.written_off_amount, 0)') }} as written_off_amount,
        coalesce(writeoffs.writeoff_count, 0) as writeoff_count,
        {{ money('contracts.amount - finance.received_amount') }} as outstanding_amount,
        contracts.status as crm_status,
        contracts.signed_at,
        contracts.approval_status,
        legs.sales_leg_closed_at,
        legs.legal_leg_closed_at,
        finance.invoices_covered_at,
        finance.receipts_covered_at,
        legs.finance_leg_closed_at,
        legs.closed_at,
        legs.is_closed,
        legs.recognized_period
    from contracts
    inner join {{ ref('int_order_legs') }} as legs on contracts.order_id = legs.order_id
    inner join {{ ref('int_order_finance_leg') }} as finance on contracts.order_id = finance.order_id
    left join customers on contracts.customer_id = customers.customer_id
    left join salespeople on contracts.salesperson_id = salespeople.salesperson_id
    left join writeoffs on contracts.order_id = writeoffs.order_id

)

select
    order_id,
    customer_id,
    salesperson_id,
    region_code,
    industry,
    contract_amount,
    invoiced_amount,
    received_amount,
    written_off_amount,
    outstanding_amount,
    sales_leg_closed_at,
    legal_leg_closed_at,
    finance_leg_closed_at,
    is_closed,
    recognized_period,
    case
        when crm_status = 'cancelled' then 'cancelled'
        when crm_status = 'submitted' then 'submitted'
        when crm_status = 'signed' and is_closed then 'closed'
        when crm_status = 'signed' then 'open'
        else 'draft'
    end as status,
    -- extras
    contract_no,
    customer_name,
    salesperson_name,
    currency,
    crm_status,
    approval_status,
    signed_at,
    sales_leg_closed_at is not null as is_sales_leg_closed,
    legal_leg_closed_at is not null as is_legal_leg_closed,
    finance_leg_closed_at is not null as is_finance_leg_closed,
    invoices_covered_at,
    receipts_covered_at,
    closed_at,
    case
        when crm_status = 'cancelled' then 'cancelled'
        when crm_status = 'submitted' then 'awaiting_signature'
        when crm_status <> 'signed' or crm_status is null then 'draft'
        when is_closed then 'closed'
        when sales_leg_closed_at is null then 'awaiting_signature'
        when legal_leg_closed_at is null then 'awaiting_archive'
        when invoices_covered_at is null then 'awaiting_invoice'
        else 'awaiting_payment'
    end as lifecycle_stage,
    invoice_count,
    received_credit_count,
    writeoff_count,
    {{ as_of_timestamp() }} as as_of
from orders
