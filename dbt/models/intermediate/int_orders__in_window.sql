{#- The orders that count for RFM: placed before as_of (and within the lookback window when one
    is set), with a counted status. Under returns_policy 'net' returned orders count with zero
    revenue; under 'exclude' they do not count at all. -#}
{%- set lookback_days = lookback_days_var() -%}

with

as_of as (
    select as_of_date from {{ ref('int_run__as_of') }}
),

orders as (
    select * from {{ ref('int_orders__amounts') }}
)

select
    orders.order_id,
    orders.customer_id,
    orders.order_date,
    orders.status,
    orders.currency,
    orders.items_amount,
    orders.amount_reporting,
    case
        when orders.status = 'returned' then cast(0 as decimal(18, 2))
        else orders.amount_reporting
    end as revenue_reporting,
    orders.reporting_currency,
    as_of.as_of_date
from orders
cross join as_of
where orders.order_date < as_of.as_of_date
  {%- if lookback_days is not none %}
  and orders.order_date >= {{ cast_date(dbt.dateadd('day', -lookback_days, 'as_of.as_of_date')) }}
  {%- endif %}
  and {{ is_counted_status('orders.status') }}
