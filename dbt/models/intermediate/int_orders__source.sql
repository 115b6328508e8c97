{#- The orders RFM works on (var rfm_source, setting rfm.source): the order headers of
    silver.orders, or, for a store whose history is clickstream events, its purchase events (event
    types in var purchase_event_types) of logged-in customers, each one completed order worth the
    list price of its product (silver.products; quantity one, no lines) in the product's currency.
    Both have the same columns, so everything downstream treats them alike. -#}
{%- set source = rfm_source_var() -%}
-- depends_on: {{ ref('stg_silver__orders') }}
-- depends_on: {{ ref('stg_silver__events') }}
-- depends_on: {{ ref('stg_silver__products') }}
{#- (all three kept whatever the var: the DAG, and the unit tests' inputs, must not change with it) #}

{% if source == 'orders' %}
select
    order_id,
    customer_id,
    ordered_at,
    order_date,
    status,
    currency,
    order_total,
    cast('orders' as varchar) as order_source
from {{ ref('stg_silver__orders') }}
{% else %}
select
    events.event_id as order_id,
    events.customer_id,
    events.occurred_at as ordered_at,
    events.event_date as order_date,
    cast('completed' as varchar) as status,
    products.currency,
    {{ money('products.list_price') }} as order_total,
    cast('events' as varchar) as order_source
from {{ ref('stg_silver__events') }} as events
left join {{ ref('stg_silver__products') }} as products on products.product_id = events.product_id
where events.event_type in {{ sql_string_list(purchase_event_types_var()) }}
  and events.customer_id is not null
{% endif %}
