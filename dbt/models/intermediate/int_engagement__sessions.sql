{#- One row per session of a person (30 minutes of inactivity end a session): what they did in it.
    A cart is abandoned when the session added to the cart and bought nothing. -#}
with

events as (
    select * from {{ ref('int_events__sessionized') }}
),

sessions as (
    select
        person_id,
        session_number,
        max(person_customer_id) as person_customer_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as events,
        sum(case when event_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when event_type = 'product_view' then 1 else 0 end) as product_views,
        sum(case when event_type = 'add_to_cart' then 1 else 0 end) as add_to_carts,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchases
    from events
    group by person_id, session_number
)

select
    person_id,
    session_number,
    person_customer_id,
    started_at,
    ended_at,
    cast(started_at as date) as session_date,
    cast(events as integer) as events,
    cast(page_views as integer) as page_views,
    cast(product_views as integer) as product_views,
    cast(add_to_carts as integer) as add_to_carts,
    cast(purchases as integer) as purchases,
    add_to_carts > 0 and purchases = 0 as is_cart_abandoned
from sessions
