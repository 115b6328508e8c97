with source as (
    select * from {{ source('silver', 'events') }}
)

select
    {{ dbt.cast('event_id', dbt.type_string()) }} as event_id,
    {{ dbt.cast('event_ts', dbt.type_timestamp()) }} as occurred_at,
    cast(event_date as date) as event_date,
    {{ dbt.cast('event_type', dbt.type_string()) }} as event_type,
    {{ dbt.cast('customer_id', dbt.type_string()) }} as customer_id,
    {{ dbt.cast('anonymous_id', dbt.type_string()) }} as anonymous_id,
    {{ dbt.cast('session_id', dbt.type_string()) }} as session_id,
    {{ dbt.cast('product_id', dbt.type_string()) }} as product_id,
    {{ dbt.cast('url', dbt.type_string()) }} as page_url,
    {{ dbt.cast('referrer', dbt.type_string()) }} as referrer_url,
    {{ dbt.cast('user_agent', dbt.type_string()) }} as user_agent,
    {{ dbt.cast('ip_token', dbt.type_string()) }} as ip_token
from source
