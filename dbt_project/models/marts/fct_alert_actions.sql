-- Every action people took on an alert, a diff-list item or the red health board, with who and
-- when, up to the as-of: the dashboard shows them beside each item, and the alerts stage
-- measures the SLAs (mart.alert_sla) against them.
select
    action_id,
    target_type,
    target_id,
    action,
    assignee,
    note,
    acted_by,
    acted_at,
    _drop_date as drop_date
from {{ ref('stg_alert_actions') }}
where acted_at <= {{ as_of_timestamp() }}
