with source as (
    select * from {{ source('silver', 'currency_rates') }}
)

select
    cast(rate_date as date) as rate_date,
    {{ dbt.cast('base_currency', dbt.type_string()) }} as base_currency,
    {{ dbt.cast('currency', dbt.type_string()) }} as currency,
    cast(rate as double) as rate
from source
