{#- Month-end cutoff (封关) rules, written once.

    The cutoff of a month is its last calendar day at var('cutoff_hour'):00 local time.
    Work finished at or before a cutoff counts in that month; after it, in the next month
    (with cutoff_hour 16: 16:00:00 counts in the month, 16:00:01 in the next). -#}

{#- On Spark these use its own date functions: dbt-spark's cross-database dateadd / last_day
    wrap every step in null checks, and nested (a period label of a period start of a cutoff)
    they made int_order_legs 85 KB of SQL that Spark spent seconds planning for each model and
    unit test. Same results: the dbt unit tests pin the boundaries on both engines. -#}

{#- The cutoff of the calendar month containing `ts` (a TIMESTAMP). -#}
{% macro month_cutoff(ts) -%}
    {{ return(adapter.dispatch('month_cutoff', 'recon')(ts)) }}
{%- endmacro %}

{% macro default__month_cutoff(ts) -%}
    {{ dbt.dateadd('hour', var('cutoff_hour'),
                   'cast(' ~ dbt.last_day(ts, 'month') ~ ' as timestamp)') }}
{%- endmacro %}

{% macro spark__month_cutoff(ts) -%}
    (cast(last_day(cast({{ ts }} as date)) as timestamp) + make_dt_interval(0, {{ var('cutoff_hour') | int }}, 0, 0))
{%- endmacro %}

{#- First day (DATE) of the period of `ts`: the month of the first cutoff at or after `ts`. -#}
{% macro cutoff_period_start(ts) -%}
    {{ return(adapter.dispatch('cutoff_period_start', 'recon')(ts)) }}
{%- endmacro %}

{% macro default__cutoff_period_start(ts) -%}
    case
        when {{ ts }} <= {{ month_cutoff(ts) }}
            then cast({{ dbt.date_trunc('month', ts) }} as date)
        else cast({{ dbt.dateadd('month', 1, dbt.date_trunc('month', ts)) }} as date)
    end
{%- endmacro %}

{% macro spark__cutoff_period_start(ts) -%}
    case
        when {{ ts }} <= {{ month_cutoff(ts) }} then trunc(cast({{ ts }} as date), 'MM')
        else add_months(trunc(cast({{ ts }} as date), 'MM'), 1)
    end
{%- endmacro %}

{#- The period label 'YYYY-MM' of `ts` under the cutoff rule. -#}
{% macro cutoff_period(ts) -%}
    {{ period_label(cutoff_period_start(ts)) }}
{%- endmacro %}

{#- The calendar month label 'YYYY-MM' of `ts` (no cutoff: what the CRM shows). -#}
{% macro calendar_period(ts) -%}
    {{ period_label(dbt.date_trunc('month', ts)) }}
{%- endmacro %}

{#- The cutoff that ends the period starting on `period_start` (a DATE, first of month). -#}
{% macro period_cutoff(period_start) -%}
    {{ month_cutoff('cast(' ~ period_start ~ ' as timestamp)') }}
{%- endmacro %}

{#- 'YYYY-MM' of a date or timestamp: extract + lpad, on Spark its date_format. -#}
{% macro period_label(d) -%}
    {{ return(adapter.dispatch('period_label', 'recon')(d)) }}
{%- endmacro %}

{% macro spark__period_label(d) -%}
    date_format({{ d }}, 'yyyy-MM')
{%- endmacro %}

{% macro default__period_label(d) -%}
    {{ dbt.concat([
        dbt.safe_cast('extract(year from ' ~ d ~ ')', dbt.type_string()),
        "'-'",
        'lpad(' ~ dbt.safe_cast('extract(month from ' ~ d ~ ')', dbt.type_string()) ~ ", 2, '0')"
    ]) }}
{%- endmacro %}

{#- First day (DATE) of the month named by a 'YYYY-MM' label. -#}
{% macro period_start_from_label(label) -%}
    cast({{ dbt.concat([label, "'-01'"]) }} as date)
{%- endmacro %}
