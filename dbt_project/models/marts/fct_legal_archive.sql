-- One row per legal review / archive record (current state): where an order's legal leg stands.
select
    archive_no,
    order_id,
    review_status,
    submitted_at,
    reviewed_at,
    archived_at,
    updated_at
from {{ ref('stg_legal_archive') }}
