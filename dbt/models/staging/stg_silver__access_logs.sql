with source as (
    select * from {{ source('silver', 'access_logs') }}
)

select
    {{ dbt.cast('ip_token', dbt.type_string()) }} as ip_token,
    {{ dbt.cast('remote_user_token', dbt.type_string()) }} as log_user,
    {{ dbt.cast('request_ts', dbt.type_timestamp()) }} as requested_at,
    cast(request_date as date) as request_date,
    {{ dbt.cast('method', dbt.type_string()) }} as http_method,
    {{ dbt.cast('path', dbt.type_string()) }} as request_path,
    cast(status as integer) as http_status,
    {{ dbt.cast('user_agent', dbt.type_string()) }} as user_agent
from source
