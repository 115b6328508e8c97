with source as (
    select * from {{ source('silver', 'order_items') }}
)

select
    {{ dbt.cast('order_id', dbt.type_string()) }} as order_id,
    {{ dbt.cast('line_number', dbt.type_int()) }} as line_number,
    {{ dbt.cast('product_id', dbt.type_string()) }} as product_id,
    {{ dbt.cast('quantity', dbt.type_int()) }} as quantity,
    cast(unit_price as decimal(18, 4)) as unit_price,
    cast(coalesce(discount, 0) as decimal(18, 2)) as discount,
    cast(line_amount as decimal(18, 2)) as line_amount
from source
