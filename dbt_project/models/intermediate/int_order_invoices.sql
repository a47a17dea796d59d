-- Invoices that count towards an order's invoiced amount and finance leg, as signed nets:
-- issued ones only (voided excluded), red-letter credit notes negative whatever sign the ERP
-- exported, and only invoices dated on or before the as-of date (later ones have not happened yet).
-- An invoice without a date is placed on its drop date.

with invoices as (

    select
        invoice_no,
        order_id,
        coalesce(invoice_date, _drop_date) as invoice_date,
        invoice_type,
        total_amount
    from {{ ref('stg_erp_invoices') }}
    where order_id is not null
      and coalesce(status, 'issued') = 'issued'

)

select
    order_id,
    invoice_no,
    invoice_date,
    coalesce(invoice_type, 'normal') as invoice_type,
    {{ money("case when invoice_type = 'red' then -abs(total_amount) else total_amount end") }} as net_amount
from invoices
where invoice_date <= {{ as_of_date() }}
