{#- Every customer id the lake knows (CRM records, guest ids on orders, ids signed in on the
    clickstream) with its person and the person's primary customer id, the key of the per-person
    marts (docs/identity.md). An id the identity graph has not seen yet is a person of its own. -#}
with

customer_ids as (
    select customer_id from {{ ref('stg_silver__customers') }}
    union
    select customer_id from {{ ref('stg_silver__orders') }}
    union
    select customer_id from {{ ref('stg_silver__events') }} where customer_id is not null
),

members as (
    select member_id, person_id, primary_customer_id
    from {{ ref('stg_gold__identity_graph') }}
    where member_kind = 'customer_id'
)

select
    customer_ids.customer_id,
    coalesce(members.person_id, 'customer:' || customer_ids.customer_id) as person_id,
    coalesce(members.primary_customer_id, customer_ids.customer_id) as person_customer_id
from customer_ids
left join members on members.member_id = customer_ids.customer_id
where customer_ids.customer_id is not null
