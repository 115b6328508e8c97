{#- The identity graph the identity stage wrote before dbt (rfmlake.identity, docs/identity.md):
    one row per member id with its person. Read by the per-person marts. -#}
with source as (
    select * from {{ source('gold', 'identity_graph') }}
)

select
    {{ dbt.cast('person_id', dbt.type_string()) }} as person_id,
    {{ dbt.cast('member_kind', dbt.type_string()) }} as member_kind,
    {{ dbt.cast('member_id', dbt.type_string()) }} as member_id,
    {{ dbt.cast('primary_customer_id', dbt.type_string()) }} as primary_customer_id,
    {{ dbt.cast('joined_by', dbt.type_string()) }} as joined_by,
    {{ dbt.cast('first_seen_at', dbt.type_timestamp()) }} as first_seen_at
from source
