{#- The rows of a dbt unit test's fixtures and expectations, as one inline table on Spark.

dbt writes each fixture row as its own `select <literals>` joined by `union all`. Spark plans
every branch as a stage of its own and compiles Java code for each one (the literals differ, so
its code cache never hits): ~40 compilations for a unit test of 40 rows, most of the time a unit
test took there (int_order_legs: 29 s of 37). `values (...), (...)` is one local relation that
Spark evaluates while planning and compiles nothing for. The rows, their casts and their column
types are dbt's (`format_row`, `safe_cast`); other adapters keep dbt's own macros. -#}

{% macro get_fixture_sql(rows, column_name_to_data_types) %}
    {{- return(adapter.dispatch('get_fixture_sql', 'recon')(rows, column_name_to_data_types)) -}}
{% endmacro %}

{% macro default__get_fixture_sql(rows, column_name_to_data_types) %}
    {{- return(dbt.get_fixture_sql(rows, column_name_to_data_types)) -}}
{% endmacro %}

{% macro spark__get_fixture_sql(rows, column_name_to_data_types) %}
{%- if (rows | length) == 0 -%}
    {{- return(dbt.get_fixture_sql(rows, column_name_to_data_types)) -}}
{%- endif -%}
{#- As dbt's macro: the input's columns and types when the caller does not give them. -#}
{%- set column_name_to_quoted = {} -%}
{%- if not column_name_to_data_types -%}
{%-   set this_or_defer_relation = defer_relation if (defer_relation and not load_relation(this)) else this -%}
{%-   set column_name_to_data_types = {} -%}
{%-   for column in adapter.get_columns_in_relation(this_or_defer_relation) -%}
{%-     do column_name_to_data_types.update({column.name | lower: column.data_type}) -%}
{%-     do column_name_to_quoted.update({column.name | lower: column.quoted}) -%}
{%-   endfor -%}
{%- endif -%}
{%- if not column_name_to_data_types -%}
    {{ exceptions.raise_compiler_error("Not able to get columns for unit test '" ~ model.name ~ "' from relation " ~ this ~ " because the relation doesn't exist") }}
{%- endif -%}
{%- set default_row = {} -%}
{%- for column_name, column_type in column_name_to_data_types.items() -%}
{%-   do default_row.update({column_name: (safe_cast("null", column_type) | trim)}) -%}
{%- endfor -%}
{{ validate_fixture_rows(rows, row_number) }}
{{- _inline_rows(rows, column_name_to_data_types, default_row, column_name_to_quoted) -}}
{% endmacro %}

{% macro get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted) %}
    {{- return(adapter.dispatch('get_expected_sql', 'recon')(rows, column_name_to_data_types, column_name_to_quoted)) -}}
{% endmacro %}

{% macro default__get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted) %}
    {{- return(dbt.get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted)) -}}
{% endmacro %}

{% macro spark__get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted) %}
{%- if (rows | length) == 0 -%}
    {{- return(dbt.get_expected_sql(rows, column_name_to_data_types, column_name_to_quoted)) -}}
{%- endif -%}
{#- The expectation lists only the columns its rows name (those of the first row, as dbt). -#}
{{- _inline_rows(rows, column_name_to_data_types, none, column_name_to_quoted) -}}
{% endmacro %}

{#- `select * from values (...), (...) as fixture(columns)`: every row with every column, in
one order (the default row's, else the first row's), each value cast as dbt casts it. -#}
{% macro _inline_rows(rows, column_name_to_data_types, default_row, column_name_to_quoted) %}
{%- set formatted = [] -%}
{%- for row in rows -%}
{%-   set formatted_row = format_row(row, column_name_to_data_types) -%}
{%-   if default_row is not none -%}
{%-     set full_row = default_row.copy() -%}
{%-     do full_row.update(formatted_row) -%}
{%-     do formatted.append(full_row) -%}
{%-   else -%}
{%-     do formatted.append(formatted_row) -%}
{%-   endif -%}
{%- endfor -%}
{%- set columns = formatted[0].keys() | list -%}
select * from values
{%- for row in formatted %}
    ({%- for column_name in columns %}{{ row.get(column_name, safe_cast('null', column_name_to_data_types[column_name])) }}{% if not loop.last %}, {% endif %}{% endfor -%}){% if not loop.last %},{% endif %}
{%- endfor %}
as fixture({%- for column_name in columns %}{{ column_name_to_quoted.get(column_name, adapter.quote(column_name)) }}{% if not loop.last %}, {% endif %}{% endfor -%})
{% endmacro %}
