{#- The run's as-of (var `as_of`, local time 'YYYY-MM-DD HH:MM:SS'): every time rule is
    evaluated against it, never against the wall clock. -#}
{% macro as_of_timestamp() -%}
    cast('{{ var("as_of") }}' as timestamp)
{%- endmacro %}

{% macro as_of_date() -%}
    cast({{ as_of_timestamp() }} as date)
{%- endmacro %}
