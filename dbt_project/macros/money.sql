{#- Money is DECIMAL(18,2) yuan everywhere: never binary float. -#}
{% macro money(expression) -%}
    cast({{ expression }} as decimal(18, 2))
{%- endmacro %}

{#- The finance leg's tolerance (var `amount_tolerance`, yuan). -#}
{% macro amount_tolerance() -%}
    {{ money(var("amount_tolerance")) }}
{%- endmacro %}
