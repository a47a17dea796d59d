-- Current state of each customer (upsert rule), as of the run.
select
    customer_id,
    customer_name,
    credit_code,
    aliases,
    region_code,
    industry,
    owner_salesperson_id,
    updated_at,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'customers'), ['customer_id']) }} as current_customers
