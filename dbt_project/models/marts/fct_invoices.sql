-- One row per ERP invoice (current state), red-letter notes and voided ones included, with the
-- signed amount it adds to its order's invoiced amount (int_order_invoices: issued and dated on
-- or before the as-of, red notes negative; zero otherwise).
select
    invoices.invoice_no,
    invoices.order_id,
    invoices.customer_name,
    coalesce(invoices.invoice_date, invoices._drop_date) as invoice_date,
    invoices.amount_excl_tax,
    invoices.tax_amount,
    invoices.total_amount,
    coalesce(invoices.invoice_type, 'normal') as invoice_type,
    coalesce(invoices.status, 'issued') as status,
    counted.invoice_no is not null as counts,
    {{ money('coalesce(counted.net_amount, 0)') }} as counted_amount,
    invoices.updated_at
from {{ ref('stg_erp_invoices') }} as invoices
left join {{ ref('int_order_invoices') }} as counted
    on invoices.invoice_no = counted.invoice_no
