{#- A portable numbers table 0 .. 10^digits - 1 (cross join of digits; no generate_series,
    no recursive CTE), used to build dense month spines. Three digits = 1000 months. -#}
{% macro month_offsets(digits=3) -%}
    (
        select
            {% for position in range(digits) -%}
            digit_{{ position }}.digit * {{ 10 ** position }}{{ ' + ' if not loop.last }}
            {%- endfor %} as month_offset
        from
            {% for position in range(digits) -%}
            (
                select 0 as digit union all select 1 union all select 2 union all select 3
                union all select 4 union all select 5 union all select 6 union all select 7
                union all select 8 union all select 9
            ) as digit_{{ position }}{{ ' cross join' if not loop.last }}
            {% endfor %}
    )
{%- endmacro %}
