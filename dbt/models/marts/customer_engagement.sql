{#- One row per person (docs/identity.md): what they did on the site up to as_of, and an engagement
    segment beside the RFM one, so people who browse but never bought can be reached too. Sessions
    end after 30 minutes of inactivity (int_events__sessionized); access-log visits count for
    signed-in people only. -#}
with

as_of as (
    select as_of_date from {{ ref('int_run__as_of') }}
),

graph_people as (
    select person_id, max(primary_customer_id) as customer_id, min(first_seen_at) as first_seen_at
    from {{ ref('stg_gold__identity_graph') }}
    group by person_id
),

sessions as (
    select * from {{ ref('int_engagement__sessions') }}
),

log_sessions as (
    select * from {{ ref('int_access_logs__sessions') }}
),

people as (
    select person_id, max(customer_id) as customer_id, min(first_seen_at) as first_seen_at
    from (
        select person_id, customer_id, first_seen_at from graph_people
        union all
        select person_id, person_customer_id as customer_id, cast(null as timestamp) as first_seen_at
        from {{ ref('int_identity__customer_ids') }}
        union all
        select person_id, person_customer_id as customer_id, min(started_at) as first_seen_at
        from sessions group by person_id, person_customer_id
    ) as known
    group by person_id
),

per_person as (
    select
        sessions.person_id,
        count(*) as sessions,
        sum(case when sessions.session_date >= {{ cast_date(dbt.dateadd('day', -30, 'as_of.as_of_date')) }} then 1 else 0 end)
            as sessions_30d,
        sum(case when sessions.session_date >= {{ cast_date(dbt.dateadd('day', -90, 'as_of.as_of_date')) }} then 1 else 0 end)
            as sessions_90d,
        sum(sessions.page_views) as page_views,
        sum(sessions.product_views) as product_views,
        sum(sessions.add_to_carts) as add_to_carts,
        sum(case when sessions.is_cart_abandoned then 1 else 0 end) as carts_abandoned,
        sum(case when sessions.is_cart_abandoned
                  and sessions.session_date >= {{ cast_date(dbt.dateadd('day', -90, 'as_of.as_of_date')) }}
                 then 1 else 0 end) as carts_abandoned_90d,
        min(sessions.started_at) as first_session_at,
        max(sessions.ended_at) as last_session_at
    from sessions
    cross join as_of
    group by sessions.person_id
),

logs_per_person as (
    select person_id, count(*) as web_log_sessions, sum(page_views) as web_log_page_views,
           max(ended_at) as last_web_log_at
    from log_sessions
    group by person_id
),

orders_per_person as (
    select ids.person_id, count(distinct orders.order_id) as lifetime_orders
    from {{ ref('stg_silver__orders') }} as orders
    join {{ ref('int_identity__customer_ids') }} as ids on ids.customer_id = orders.customer_id
    cross join as_of
    where orders.order_date < as_of.as_of_date and {{ is_counted_status('orders.status') }}
    group by ids.person_id
),

joined as (
    select
        people.person_id,
        people.customer_id,
        as_of.as_of_date,
        people.first_seen_at,
        coalesce(per_person.sessions, 0) as sessions,
        coalesce(per_person.sessions_30d, 0) as sessions_30d,
        coalesce(per_person.sessions_90d, 0) as sessions_90d,
        coalesce(per_person.page_views, 0) as page_views,
        coalesce(per_person.product_views, 0) as product_views,
        coalesce(per_person.add_to_carts, 0) as add_to_carts,
        coalesce(per_person.carts_abandoned, 0) as carts_abandoned,
        coalesce(per_person.carts_abandoned_90d, 0) as carts_abandoned_90d,
        coalesce(logs_per_person.web_log_sessions, 0) as web_log_sessions,
        coalesce(logs_per_person.web_log_page_views, 0) as web_log_page_views,
        case
            when logs_per_person.last_web_log_at is null then per_person.last_session_at
            when per_person.last_session_at is null then logs_per_person.last_web_log_at
            when logs_per_person.last_web_log_at > per_person.last_session_at then logs_per_person.last_web_log_at
            else per_person.last_session_at
        end as last_seen_at,
        coalesce(orders_per_person.lifetime_orders, 0) as lifetime_orders
    from people
    cross join as_of
    left join per_person on per_person.person_id = people.person_id
    left join logs_per_person on logs_per_person.person_id = people.person_id
    left join orders_per_person on orders_per_person.person_id = people.person_id
)

select
    cast(person_id as varchar) as person_id,
    cast(customer_id as varchar) as customer_id,
    cast(as_of_date as date) as as_of_date,
    cast(first_seen_at as timestamp) as first_seen_at,
    cast(last_seen_at as timestamp) as last_seen_at,
    cast({{ dbt.datediff(cast_date('last_seen_at'), 'as_of_date', 'day') }} as integer) as engagement_recency_days,
    cast(sessions as integer) as sessions,
    cast(sessions_30d as integer) as sessions_30d,
    cast(sessions_90d as integer) as sessions_90d,
    cast(page_views as integer) as page_views,
    cast(product_views as integer) as product_views,
    cast(add_to_carts as integer) as add_to_carts,
    cast(carts_abandoned as integer) as carts_abandoned,
    cast(carts_abandoned_90d as integer) as carts_abandoned_90d,
    cast(web_log_sessions as integer) as web_log_sessions,
    cast(web_log_page_views as integer) as web_log_page_views,
    cast(lifetime_orders as integer) as lifetime_orders,
    customer_id is null as is_anonymous,
    cast(
        case
            when lifetime_orders > 0 then 'Buyer'
            when carts_abandoned_90d > 0 then 'Abandoned a cart'
            when sessions_90d > 0
                 or (web_log_sessions > 0
                     and {{ cast_date('last_seen_at') }} >= {{ cast_date(dbt.dateadd('day', -90, 'as_of_date')) }})
                then 'Browsing, never bought'
            when sessions > 0 or web_log_sessions > 0 then 'Lapsed browser, never bought'
            else 'Signed up, never visited'
        end
    as varchar) as engagement_segment
from joined
