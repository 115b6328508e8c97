with source as (
    select * from {{ source('silver', 'customers') }}
)

select
    {{ dbt.cast('customer_id', dbt.type_string()) }} as customer_id,
    {{ dbt.cast('email_token', dbt.type_string()) }} as email_token,
    {{ dbt.cast('phone_token', dbt.type_string()) }} as phone_token,
    {{ dbt.cast('first_name_token', dbt.type_string()) }} as first_name_token,
    {{ dbt.cast('last_name_token', dbt.type_string()) }} as last_name_token,
    {{ dbt.cast('has_email', dbt.type_boolean()) }} as has_email,
    {{ dbt.cast('has_phone', dbt.type_boolean()) }} as has_phone,
    {{ dbt.cast('country', dbt.type_string()) }} as country_code,
    {{ dbt.cast('city', dbt.type_string()) }} as city,
    {{ dbt.cast('postal_code', dbt.type_string()) }} as postal_code,
    {{ dbt.cast('created_at', dbt.type_timestamp()) }} as created_at,
    {{ dbt.cast('updated_at', dbt.type_timestamp()) }} as updated_at,
    {{ dbt.cast('marketing_opt_in', dbt.type_boolean()) }} as marketing_opt_in
from source
