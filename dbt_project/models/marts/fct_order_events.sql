-- One row per thing that happened to an order up to the as-of, oldest first on its page: CRM
-- status, approval and amount changes (from every version received), legal submission,
-- review and archiving, invoices (red-letter notes included), receipts allocated to it,
-- write-offs, and the moment its three legs closed.

with versions as (

    select
        order_id,
        status,
        approval_status,
        amount,
        signed_at,
        approval_submitted_at,
        approval_updated_at,
        coalesce(updated_at, cast(_drop_date as timestamp)) as changed_at,
        _drop_date,
        _source_file,
        _row_number
    from {{ ref('stg_crm_contract_versions') }}

),

ordered as (

    select
        versions.*,
        row_number() over (
            partition by order_id order by changed_at, _drop_date, _source_file, _row_number
        ) as version_no,
        lag(status) over (
            partition by order_id order by changed_at, _drop_date, _source_file, _row_number
        ) as previous_status,
        lag(approval_status) over (
            partition by order_id order by changed_at, _drop_date, _source_file, _row_number
        ) as previous_approval_status,
        lag(amount) over (
            partition by order_id order by changed_at, _drop_date, _source_file, _row_number
        ) as previous_amount
    from versions

),

events as (

    select
        order_id,
        case when status = 'signed' then coalesce(signed_at, changed_at) else changed_at end as event_at,
        'crm_status' as event_type,
        status as detail,
        previous_status as previous_detail,
        amount
    from ordered
    where status is not null
      and (version_no = 1 or coalesce(previous_status, '') <> status)

    union all

    select
        order_id,
        case
            when approval_status = 'pending' then coalesce(approval_submitted_at, changed_at)
            else coalesce(approval_updated_at, changed_at)
        end as event_at,
        'approval' as event_type,
        approval_status as detail,
        previous_approval_status as previous_detail,
        cast(null as decimal(18, 2)) as amount
    from ordered
    where approval_status is not null
      and (version_no = 1 or coalesce(previous_approval_status, '') <> approval_status)

    union all

    select
        order_id,
        changed_at as event_at,
        'amount_changed' as event_type,
        cast(amount as {{ dbt.type_string() }}) as detail,
        cast(previous_amount as {{ dbt.type_string() }}) as previous_detail,
        amount
    from ordered
    where version_no > 1 and previous_amount is not null and amount <> previous_amount

    union all

    select order_id, submitted_at, 'legal_submitted', archive_no, cast(null as {{ dbt.type_string() }}),
           cast(null as decimal(18, 2))
    from {{ ref('stg_legal_archive') }}
    where submitted_at is not null

    union all

    select order_id, reviewed_at, 'legal_reviewed', review_status, archive_no, cast(null as decimal(18, 2))
    from {{ ref('stg_legal_archive') }}
    where reviewed_at is not null and review_status in ('approved', 'rejected')

    union all

    select order_id, archived_at, 'legal_archived', archive_no, cast(null as {{ dbt.type_string() }}),
           cast(null as decimal(18, 2))
    from {{ ref('stg_legal_archive') }}
    where archived_at is not null

    union all

    select order_id, cast(invoice_date as timestamp), 'invoice', invoice_no,
           case when status <> 'issued' then 'voided' else invoice_type end, counted_amount
    from {{ ref('fct_invoices') }}

    union all

    select order_id, txn_time, 'receipt', txn_id, match_status, allocated_amount
    from {{ ref('int_credit_allocations') }}
    where order_id is not null

    union all

    select order_id, confirmed_at, 'writeoff', writeoff_id, status, amount
    from {{ ref('fct_writeoffs') }}
    where order_id is not null and confirmed_at is not null

    union all

    select order_id, closed_at, 'closed', recognized_period, cast(null as {{ dbt.type_string() }}),
           contract_amount
    from {{ ref('fct_order_reconciliation') }}
    where is_closed and closed_at is not null

)

select
    order_id,
    event_at,
    event_type,
    detail,
    previous_detail,
    {{ money('amount') }} as amount
from events
where order_id is not null
  and event_at is not null
  and event_at <= {{ as_of_timestamp() }}
