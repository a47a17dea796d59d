{#- Models land exactly in the schema they configure (staging / intermediate / mart), not in
    dbt's default `<target schema>_<custom schema>`: the pipeline and BI read those names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
