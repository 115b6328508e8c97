{#- One row per person with at least one counted order in the window: the recency, frequency
    and monetary inputs of RFM scoring (DESIGN.md section 5). A person's orders under every customer
    id the identity graph joined count together, keyed by the person's primary customer id
    (docs/identity.md). Scores and segments are computed downstream (rfmlake.rfm /
    rfmlake.segmentation). -#}
with

counted_orders as (
    select
        orders.*,
        coalesce(ids.person_customer_id, orders.customer_id) as person_customer_id,
        coalesce(ids.person_id, 'customer:' || orders.customer_id) as person_id
    from {{ ref('int_orders__in_window') }} as orders
    left join {{ ref('int_identity__customer_ids') }} as ids on ids.customer_id = orders.customer_id
),

per_customer as (
    select
        person_customer_id as customer_id,
        max(person_id) as person_id,
        count(distinct customer_id) as customer_ids,
        max(as_of_date) as as_of_date,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(distinct order_id) as frequency,
        sum(coalesce(revenue_reporting, 0)) as monetary,
        max(reporting_currency) as reporting_currency
    from counted_orders
    group by person_customer_id
)

select
    cast(customer_id as varchar) as customer_id,
    cast(as_of_date as date) as as_of_date,
    cast(first_order_date as date) as first_order_date,
    cast(last_order_date as date) as last_order_date,
    cast({{ dbt.datediff('last_order_date', 'as_of_date', 'day') }} as integer) as recency_days,
    cast(frequency as integer) as frequency,
    cast(monetary as decimal(18, 2)) as monetary,
    -- decimal division rounds the same on both engines; a double would not at half cents.
    {{ money('cast(monetary as decimal(38, 6)) / frequency') }} as avg_order_value,
    cast(reporting_currency as varchar) as reporting_currency,
    cast(person_id as varchar) as person_id,
    cast(customer_ids as integer) as customer_ids
from per_customer
