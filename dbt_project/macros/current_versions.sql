{#- The contract's upsert rule, written once: from a raw history table, keep the drops
    visible as of the run (`_drop_date` on or before the as-of date) and, per key, the
    current version: latest `version_column` (a version without one loses to any with one),
    then latest `_drop_date`, then latest `_source_file`, then latest `_row_number`.

    Returns a subquery (all raw columns) to select from; no QUALIFY, for portability. -#}
{% macro current_versions(relation, key_columns, version_column='updated_at') -%}
    (
        select ranked.*
        from (
            select
                history.*,
                row_number() over (
                    partition by {{ key_columns | join(', ') }}
                    order by
                        {% if version_column -%}
                        {{ version_column }} desc nulls last,
                        {% endif -%}
                        _drop_date desc,
                        _source_file desc,
                        _row_number desc
                ) as _version_rank
            from {{ relation }} as history
            where _drop_date <= {{ as_of_date() }}
        ) as ranked
        where ranked._version_rank = 1
    )
{%- endmacro %}
