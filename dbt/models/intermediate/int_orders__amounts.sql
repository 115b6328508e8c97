{#- One row per order with its amount: the sum of its lines net of discounts when it has lines,
    else the header total (DESIGN.md section 3), converted to the reporting currency. -#}
with

orders as (
    select * from {{ ref('stg_silver__orders') }}
),

lines as (
    select
        order_id,
        count(*) as line_count,
        sum(line_amount) as lines_amount
    from {{ ref('stg_silver__order_items') }}
    group by order_id
),

rates as (
    select * from {{ ref('stg_silver__currency_rates') }}
),

amounts as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.order_date,
        orders.status,
        orders.currency,
        orders.order_total,
        cast(coalesce(lines.line_count, 0) as integer) as line_count,
        lines.order_id is not null as has_items,
        cast(
            case when lines.order_id is not null then lines.lines_amount else orders.order_total end
            as decimal(18, 2)
        ) as items_amount,
        rates.rate_to_reporting,
        rates.reporting_currency
    from orders
    left join lines on lines.order_id = orders.order_id
    left join rates on rates.currency = orders.currency
)

select
    order_id,
    customer_id,
    ordered_at,
    order_date,
    status,
    currency,
    order_total,
    line_count,
    has_items,
    items_amount,
    rate_to_reporting,
    -- widen first: decimal(18,2) * decimal(18,8) would overflow on DuckDB above 10^8.
    {{ money('cast(items_amount as decimal(38, 2)) * rate_to_reporting') }} as amount_reporting,
    reporting_currency
from amounts
