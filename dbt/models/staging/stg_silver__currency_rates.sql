with source as (
    select * from {{ source('silver', 'currency_rates') }}
)

select
    {{ dbt.cast('currency', dbt.type_string()) }} as currency,
    -- decimal, not double: converted amounts then round the same way on DuckDB and Athena.
    cast(rate_to_reporting as decimal(18, 8)) as rate_to_reporting,
    {{ dbt.cast('reporting_currency', dbt.type_string()) }} as reporting_currency
from source
