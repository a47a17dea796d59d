-- Current state of each ERP invoice (upsert rule), as of the run.
select
    invoice_no,
    order_id,
    customer_name,
    invoice_date,
    {{ money('amount_excl_tax') }} as amount_excl_tax,
    {{ money('tax_amount') }} as tax_amount,
    {{ money('total_amount') }} as total_amount,
    invoice_type,
    status,
    updated_at,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'erp_invoices'), ['invoice_no']) }} as current_invoices
