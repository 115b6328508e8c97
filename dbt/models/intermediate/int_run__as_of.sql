{#- One row: the run's as_of date. Given (var as_of_date) or the day after the latest order in the
    data (int_orders__source: orders, or purchase events), whatever its status (DESIGN.md section 5). -#}
{%- set as_of = as_of_date_var() -%}
-- depends_on: {{ ref('int_orders__source') }}
{#- (kept whatever the var: the DAG, and the unit tests' inputs, must not change with it) #}

{% if as_of is not none %}
select cast({{ dbt.string_literal(as_of) }} as date) as as_of_date
{% else %}
select {{ cast_date(dbt.dateadd('day', 1, 'max(order_date)')) }} as as_of_date
from {{ ref('int_orders__source') }}
{% endif %}
