{#- One row per customer id: every CRM customer plus every guest id seen only on orders, with
    tokenized CRM attributes, order history up to as_of (of this id alone) and the person the
    identity graph put it in (docs/identity.md). -#}
with

customers as (
    select * from {{ ref('stg_silver__customers') }}
),

as_of as (
    select as_of_date from {{ ref('int_run__as_of') }}
),

orders as (
    select orders.*
    from {{ ref('int_orders__amounts') }} as orders
    cross join as_of
    where orders.order_date < as_of.as_of_date
),

order_history as (
    select
        customer_id,
        min(case when {{ is_counted_status('status') }} then order_date end) as first_order_date,
        max(case when {{ is_counted_status('status') }} then order_date end) as last_order_date,
        count(distinct case when {{ is_counted_status('status') }} then order_id end) as lifetime_orders,
        count(distinct order_id) as orders_placed
    from orders
    group by customer_id
),

customer_ids as (
    select customer_id from customers
    union
    select customer_id from order_history
),

people as (
    select * from {{ ref('int_identity__customer_ids') }}
)

select
    customer_ids.customer_id,
    customers.email_token,
    customers.phone_token,
    customers.first_name_token,
    customers.last_name_token,
    customers.has_email,
    customers.has_phone,
    customers.country_code,
    customers.city,
    customers.postal_code,
    customers.created_at,
    customers.updated_at,
    customers.marketing_opt_in,
    order_history.first_order_date,
    order_history.last_order_date,
    cast(coalesce(order_history.lifetime_orders, 0) as integer) as lifetime_orders,
    cast(coalesce(order_history.orders_placed, 0) as integer) as orders_placed,
    customers.customer_id is null as is_guest,
    coalesce(people.person_id, 'customer:' || customer_ids.customer_id) as person_id,
    coalesce(people.person_customer_id, customer_ids.customer_id) as person_customer_id
from customer_ids
left join customers on customers.customer_id = customer_ids.customer_id
left join order_history on order_history.customer_id = customer_ids.customer_id
left join people on people.customer_id = customer_ids.customer_id
