{#- Web-server visits of signed-in people: access-log lines whose user is a member of a person
    (the identity graph joins a log user to the customer id it is), cut into sessions after 30
    minutes without a request. Lines of anonymous clients belong to no person and are left out. -#}
with

as_of as (
    select as_of_date from {{ ref('int_run__as_of') }}
),

log_users as (
    select member_id as log_user, person_id
    from {{ ref('stg_gold__identity_graph') }}
    where member_kind = 'log_user'
),

requests as (
    select
        log_users.person_id,
        logs.requested_at,
        logs.request_path,
        logs.http_method,
        logs.http_status,
        lag(logs.requested_at) over (partition by log_users.person_id order by logs.requested_at, logs.request_path)
            as previous_at
    from {{ ref('stg_silver__access_logs') }} as logs
    join log_users on log_users.log_user = logs.log_user
    cross join as_of
    where logs.request_date < as_of.as_of_date
),

numbered as (
    select
        requests.*,
        sum(
            case
                when previous_at is null then 1
                when {{ dbt.datediff('previous_at', 'requested_at', 'second') }} > 1800 then 1
                else 0
            end
        ) over (partition by person_id order by requested_at, request_path rows between unbounded preceding and current row)
        as session_number
    from requests
)

select
    person_id,
    cast(session_number as integer) as session_number,
    min(requested_at) as started_at,
    max(requested_at) as ended_at,
    cast(sum(case when http_method = 'GET' and http_status < 400 then 1 else 0 end) as integer) as page_views,
    cast(sum(case when http_method = 'GET' and http_status < 400 and request_path like '/p/%' then 1 else 0 end)
        as integer) as product_views
from numbered
group by person_id, session_number
