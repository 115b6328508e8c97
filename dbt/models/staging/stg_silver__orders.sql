with source as (
    select * from {{ source('silver', 'orders') }}
)

select
    {{ dbt.cast('order_id', dbt.type_string()) }} as order_id,
    {{ dbt.cast('customer_id', dbt.type_string()) }} as customer_id,
    {{ dbt.cast('order_ts', dbt.type_timestamp()) }} as ordered_at,
    cast(order_date as date) as order_date,
    {{ dbt.cast('status', dbt.type_string()) }} as status,
    {{ dbt.cast('currency', dbt.type_string()) }} as currency,
    cast(order_total as decimal(18, 2)) as order_total
from source
