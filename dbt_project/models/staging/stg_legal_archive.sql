-- Current state of each legal review / archive record (upsert rule), as of the run.
select
    archive_no,
    order_id,
    review_status,
    submitted_at,
    reviewed_at,
    archived_at,
    updated_at,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'legal_archive'), ['archive_no']) }} as current_archive
