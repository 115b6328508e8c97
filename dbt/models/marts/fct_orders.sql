{#- One row per order (every status) with its amount in the order's and the reporting currency,
    the rate it was converted with, whether it counts for this run's RFM features, and its buyer
    as a person. With rfm.source = events the orders are the purchase events (order_source). -#}
with

orders as (
    select * from {{ ref('int_orders__amounts') }}
),

counted as (
    select order_id from {{ ref('int_orders__in_window') }}
),

people as (
    select * from {{ ref('int_identity__customer_ids') }}
)

select
    orders.order_id,
    -- The buyer as a person (docs/identity.md): the person's primary customer id, the key of
    -- gold.customer_rfm; the id the order was placed under is order_customer_id.
    coalesce(people.person_customer_id, orders.customer_id) as customer_id,
    orders.customer_id as order_customer_id,
    coalesce(people.person_id, 'customer:' || orders.customer_id) as person_id,
    orders.ordered_at,
    orders.order_date,
    orders.status,
    orders.currency,
    orders.order_total,
    orders.order_source,
    orders.line_count,
    orders.has_items,
    orders.items_amount,
    orders.rate_to_reporting,
    orders.rate_date,
    orders.rate_source,
    orders.amount_reporting,
    orders.reporting_currency,
    counted.order_id is not null as is_rfm_counted
from orders
left join counted on counted.order_id = orders.order_id
left join people on people.customer_id = orders.customer_id
