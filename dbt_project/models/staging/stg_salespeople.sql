-- Current state of each salesperson (upsert rule), as of the run.
select
    salesperson_id,
    name,
    email,
    manager_email,
    region_code,
    updated_at,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'salespeople'), ['salesperson_id']) }} as current_salespeople
