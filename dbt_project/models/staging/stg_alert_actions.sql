-- Current state of each action on an alert, diff-list item or the health board (upsert rule).
select
    action_id,
    target_type,
    target_id,
    action,
    assignee,
    note,
    acted_by,
    acted_at,
    _drop_date,
    _source_file,
    _row_number,
    _extra_columns
from {{ current_versions(source('raw', 'alert_actions'), ['action_id'], version_column='acted_at') }} as current_actions
