-- One row per salesperson and period ('YYYY-MM'), dense from the salesperson's first activity to
-- the period of the as-of: signed vs recognized vs collected, and the discrepancy rate.

with activity as (

    select * from {{ ref('int_salesperson_period_activity') }}

),

last_period as (

    select {{ cutoff_period_start(as_of_timestamp()) }} as period_start

),

first_activity as (

    select salesperson_id, min(period_start) as first_period_start
    from activity
    group by salesperson_id

),

spine as (

    select
        first_activity.salesperson_id,
        cast({{ dbt.dateadd('month', 'offsets.month_offset', 'first_activity.first_period_start') }} as date) as period_start
    from first_activity
    cross join {{ month_offsets() }} as offsets
    cross join last_period
    where {{ dbt.dateadd('month', 'offsets.month_offset', 'first_activity.first_period_start') }}
        <= last_period.period_start

),

measured as (

    select
        spine.salesperson_id,
        spine.period_start,
        {{ money('coalesce(activity.signed_amount, 0)') }} as signed_amount,
        {{ money('coalesce(activity.recognized_amount, 0)') }} as recognized_amount,
        {{ money('coalesce(activity.collected_amount, 0)') }} as collected_amount
    from spine
    left join activity
        on spine.salesperson_id = activity.salesperson_id
       and spine.period_start = activity.period_start

)

select
    salesperson_id,
    {{ period_label('period_start') }} as period,
    signed_amount,
    recognized_amount,
    collected_amount,
    case
        when signed_amount <> 0
            then cast(signed_amount - recognized_amount as {{ type_double() }})
               / cast(signed_amount as {{ type_double() }})
    end as discrepancy_rate,
    -- Compared in exact decimals, not on the rounded rate.
    coalesce(
        signed_amount <> 0
        and (signed_amount - recognized_amount)
            > cast({{ var('discrepancy_rate_threshold') }} as decimal(12, 6)) * signed_amount,
        false
    ) as needs_review,
    -- extras
    period_start,
    {{ period_cutoff('period_start') }} as period_cutoff_at,
    {{ period_cutoff('period_start') }} <= {{ as_of_timestamp() }} as is_period_closed,
    {{ as_of_timestamp() }} as as_of
from measured
