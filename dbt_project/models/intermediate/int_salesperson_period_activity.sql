-- Per salesperson and period (first day of the month), the three measures of the period summary:
--   signed:     orders whose CRM status is signed, by calendar month of signing (what the CRM shows);
--   recognized: closed orders, by recognized period (cutoff rule);
--   collected:  money received on the salesperson's orders, by cutoff period of the bank txn_time.

with orders as (

    select * from {{ ref('int_order_legs') }}
    where salesperson_id is not null

),

signed as (

    select
        salesperson_id,
        cast({{ dbt.date_trunc('month', 'sales_leg_closed_at') }} as date) as period_start,
        contract_amount as signed_amount,
        {{ money(0) }} as recognized_amount,
        {{ money(0) }} as collected_amount
    from orders
    where sales_leg_closed_at is not null

),

recognized as (

    select
        salesperson_id,
        recognized_period_start as period_start,
        {{ money(0) }} as signed_amount,
        contract_amount as recognized_amount,
        {{ money(0) }} as collected_amount
    from orders
    where is_closed

),

collected as (

    select
        orders.salesperson_id,
        {{ cutoff_period_start('receipts.txn_time') }} as period_start,
        {{ money(0) }} as signed_amount,
        {{ money(0) }} as recognized_amount,
        receipts.received_amount as collected_amount
    from {{ ref('int_order_receipts') }} as receipts
    inner join orders on receipts.order_id = orders.order_id

),

activity as (

    select * from signed
    union all
    select * from recognized
    union all
    select * from collected

)

select
    salesperson_id,
    period_start,
    {{ money('sum(coalesce(signed_amount, 0))') }} as signed_amount,
    {{ money('sum(coalesce(recognized_amount, 0))') }} as recognized_amount,
    {{ money('sum(coalesce(collected_amount, 0))') }} as collected_amount
from activity
group by salesperson_id, period_start
