-- The three legs (三联单) of every CRM order and the period it is recognized in.
--   sales:   status signed, closed at signed_at (updated_at, then the drop date, when the CRM
--            exported no signing time);
--   legal:   an approved review with an archive time, closed at the earliest such archived_at;
--   finance: see int_order_finance_leg.
-- A leg whose closing moment lies after the as-of has not closed yet. An order is closed when all
-- three legs are; it is recognized in the period of the first cutoff at or after its last leg.

with contracts as (

    select
        order_id,
        salesperson_id,
        amount as contract_amount,
        coalesce(status, 'draft') as crm_status,
        case
            when status = 'signed' then coalesce(signed_at, updated_at, cast(_drop_date as timestamp))
        end as signed_moment
    from {{ ref('stg_crm_contracts') }}

),

legal as (

    select
        order_id,
        min(archived_at) as archived_at
    from {{ ref('stg_legal_archive') }}
    where review_status = 'approved'
      and archived_at is not null
      and archived_at <= {{ as_of_timestamp() }}
      and order_id is not null
    group by order_id

),

legs as (

    select
        contracts.order_id,
        contracts.salesperson_id,
        contracts.contract_amount,
        contracts.crm_status,
        case
            when contracts.signed_moment <= {{ as_of_timestamp() }} then contracts.signed_moment
        end as sales_leg_closed_at,
        legal.archived_at as legal_leg_closed_at,
        finance.finance_leg_closed_at
    from contracts
    left join legal on contracts.order_id = legal.order_id
    left join {{ ref('int_order_finance_leg') }} as finance
        on contracts.order_id = finance.order_id

),

closed as (

    select
        legs.*,
        case
            when sales_leg_closed_at is not null
             and legal_leg_closed_at is not null
             and finance_leg_closed_at is not null
                then case
                    when sales_leg_closed_at >= legal_leg_closed_at
                     and sales_leg_closed_at >= finance_leg_closed_at then sales_leg_closed_at
                    when legal_leg_closed_at >= finance_leg_closed_at then legal_leg_closed_at
                    else finance_leg_closed_at
                end
        end as closed_at
    from legs

)

select
    order_id,
    salesperson_id,
    contract_amount,
    crm_status,
    sales_leg_closed_at,
    legal_leg_closed_at,
    finance_leg_closed_at,
    closed_at,
    closed_at is not null as is_closed,
    case when closed_at is not null then {{ cutoff_period_start('closed_at') }} end as recognized_period_start,
    case when closed_at is not null then {{ cutoff_period('closed_at') }} end as recognized_period
from closed
