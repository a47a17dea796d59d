{#- Grain test: no two rows share the same values of `combination` (nulls compare equal,
    so "one row with null order_id" is checked too). Written here because dbt_utils is not
    available (no `dbt deps`). -#}
{% test unique_combination_of_columns(model, combination) %}
select
    {{ combination | join(', ') }},
    count(*) as duplicate_rows
from {{ model }}
group by {{ combination | join(', ') }}
having count(*) > 1
{% endtest %}
