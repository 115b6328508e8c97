{#- Clickstream events before as_of attributed to people and cut into sessions: a person's next
    event more than 30 minutes after their previous one starts a new session. An event belongs to
    the person of its customer id when signed in, else to the person of its device (a device joined
    to a customer by the identity graph brings its anonymous history along), else to the device. -#}
with

as_of as (
    select as_of_date from {{ ref('int_run__as_of') }}
),

events as (
    select events.*
    from {{ ref('stg_silver__events') }} as events
    cross join as_of
    where events.event_date < as_of.as_of_date
),

customers as (
    select * from {{ ref('int_identity__customer_ids') }}
),

devices as (
    select member_id as anonymous_id, person_id, primary_customer_id
    from {{ ref('stg_gold__identity_graph') }}
    where member_kind = 'anonymous_id'
),

attributed as (
    select
        events.event_id,
        events.occurred_at,
        events.event_type,
        events.product_id,
        events.customer_id,
        events.anonymous_id,
        coalesce(customers.person_id, devices.person_id, 'device:' || events.anonymous_id) as person_id,
        coalesce(customers.person_customer_id, devices.primary_customer_id) as person_customer_id
    from events
    left join customers on customers.customer_id = events.customer_id
    left join devices on devices.anonymous_id = events.anonymous_id
    where events.customer_id is not null or events.anonymous_id is not null
),

gaps as (
    select
        attributed.*,
        lag(occurred_at) over (partition by person_id order by occurred_at, event_id) as previous_at
    from attributed
)

select
    event_id,
    occurred_at,
    event_type,
    product_id,
    customer_id,
    anonymous_id,
    person_id,
    person_customer_id,
    cast(sum(
        case
            when previous_at is null then 1
            when {{ dbt.datediff('previous_at', 'occurred_at', 'second') }} > 1800 then 1
            else 0
        end
    ) over (partition by person_id order by occurred_at, event_id rows between unbounded preceding and current row)
    as integer) as session_number
from gaps
