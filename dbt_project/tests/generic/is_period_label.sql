{#- Every non-null value is a 'YYYY-MM' period label with a month 01-12. -#}
{% test is_period_label(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and not (
        {{ dbt.length(column_name) }} = 7
    and substring({{ column_name }}, 5, 1) = '-'
    and {{ dbt.safe_cast('substring(' ~ column_name ~ ', 1, 4)', 'integer') }} is not null
    and {{ dbt.safe_cast('substring(' ~ column_name ~ ', 6, 2)', 'integer') }} between 1 and 12
  )
{% endtest %}
