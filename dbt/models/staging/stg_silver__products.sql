with source as (
    select * from {{ source('silver', 'products') }}
)

select
    {{ dbt.cast('product_id', dbt.type_string()) }} as product_id,
    {{ dbt.cast('name', dbt.type_string()) }} as product_name,
    {{ dbt.cast('category', dbt.type_string()) }} as category,
    {{ dbt.cast('brand', dbt.type_string()) }} as brand,
    cast(price as decimal(18, 4)) as list_price,
    {{ dbt.cast('currency', dbt.type_string()) }} as currency
from source
