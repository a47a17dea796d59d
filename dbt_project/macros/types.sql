{#- Types whose spelling differs between engines (dispatched per adapter). -#}

{#- An 8-byte float, for ratios (never money): `double precision` in DuckDB and Postgres,
    `double` in Spark SQL (which has no `double precision`; its `float` is 4 bytes). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'recon')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}
