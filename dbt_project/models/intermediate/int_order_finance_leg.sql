-- The finance leg of each CRM order. Both the net invoiced amount and the money received must
-- cover the contract amount within the tolerance (var amount_tolerance). Each side is covered
-- by the row at which its running total (ordered by date, then id) last crossed from below the
-- threshold to at/above it; the leg closes at the later of the covering invoice's date (00:00)
-- and the covering credit's txn_time.

with contracts as (

    select
        order_id,
        amount as contract_amount,
        amount - {{ amount_tolerance() }} as covered_threshold
    from {{ ref('stg_crm_contracts') }}

),

invoices_running as (

    select
        invoices.order_id,
        invoices.invoice_date,
        invoices.net_amount,
        sum(invoices.net_amount) over (
            partition by invoices.order_id
            order by invoices.invoice_date, invoices.invoice_no
            rows between unbounded preceding and current row
        ) as running_total
    from {{ ref('int_order_invoices') }} as invoices

),

invoice_coverage as (

    select
        invoices_running.order_id,
        sum(invoices_running.net_amount) as invoiced_amount,
        count(*) as invoice_count,
        max(case
            when invoices_running.running_total >= contracts.covered_threshold
             and invoices_running.running_total - invoices_running.net_amount < contracts.covered_threshold
                then invoices_running.invoice_date
        end) as last_crossing_date
    from invoices_running
    inner join contracts on invoices_running.order_id = contracts.order_id
    group by invoices_running.order_id

),

receipts_running as (

    select
        receipts.order_id,
        receipts.txn_time,
        receipts.received_amount,
        sum(receipts.received_amount) over (
            partition by receipts.order_id
            order by receipts.txn_time, receipts.txn_id, receipts.account_no
            rows between unbounded preceding and current row
        ) as running_total
    from {{ ref('int_order_receipts') }} as receipts

),

receipt_coverage as (

    select
        receipts_running.order_id,
        sum(receipts_running.received_amount) as received_amount,
        -- a count: BIGINT on every engine (DuckDB would sum integers into a HUGEINT)
        cast(sum(case when receipts_running.received_amount > 0 then 1 else 0 end) as {{ dbt.type_bigint() }}) as received_credit_count,
        max(case
            when receipts_running.running_total >= contracts.covered_threshold
             and receipts_running.running_total - receipts_running.received_amount < contracts.covered_threshold
                then receipts_running.txn_time
        end) as last_crossing_time
    from receipts_running
    inner join contracts on receipts_running.order_id = contracts.order_id
    group by receipts_running.order_id

),

covered as (

    select
        contracts.order_id,
        contracts.contract_amount,
        {{ money('coalesce(invoice_coverage.invoiced_amount, 0)') }} as invoiced_amount,
        coalesce(invoice_coverage.invoice_count, 0) as invoice_count,
        {{ money('coalesce(receipt_coverage.received_amount, 0)') }} as received_amount,
        coalesce(receipt_coverage.received_credit_count, 0) as received_credit_count,
        case
            when invoice_coverage.invoiced_amount >= contracts.covered_threshold
                then cast(invoice_coverage.last_crossing_date as timestamp)
        end as invoices_covered_at,
        case
            when receipt_coverage.received_amount >= contracts.covered_threshold
                then receipt_coverage.last_crossing_time
        end as receipts_covered_at
    from contracts
    left join invoice_coverage on contracts.order_id = invoice_coverage.order_id
    left join receipt_coverage on contracts.order_id = receipt_coverage.order_id

)

select
    order_id,
    contract_amount,
    invoiced_amount,
    invoice_count,
    received_amount,
    received_credit_count,
    invoices_covered_at,
    receipts_covered_at,
    case
        when invoices_covered_at is not null and receipts_covered_at is not null
            then case
                when invoices_covered_at >= receipts_covered_at then invoices_covered_at
                else receipts_covered_at
            end
    end as finance_leg_closed_at
from covered
