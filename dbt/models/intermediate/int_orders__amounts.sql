{#- One row per order (int_orders__source: orders, or purchase events) with its amount: the sum of
    its lines net of discounts when it has lines, else the header total (DESIGN.md section 3),
    converted to the reporting currency by the order's date. The rate is the latest landed rate on
    or before the order date; before its currency's first landed rate, the fixed fallback of var
    currency_rates when given, else that first rate; no landed rate at all: the fixed fallback. The
    build stops, naming them, when orders have no rate (macros/currency.sql). -#}
{{ assert_currency_rates() }}

with

orders as (
    select * from {{ ref('int_orders__source') }}
),

lines as (
    select
        order_id,
        count(*) as line_count,
        sum(line_amount) as lines_amount
    from {{ ref('stg_silver__order_items') }}
    {%- if rfm_source_var() == 'events' %}
    where false  -- purchase events have no lines, and their ids are not order ids
    {%- endif %}
    group by order_id
),

reporting as (
    select reporting_currency from {{ ref('int_run__reporting_currency') }}
),

rates as (
    select * from {{ ref('int_currency_rates__to_reporting') }}
),

landed as (
    select * from rates where rate_source = 'landed'
),

earliest as (
    select landed.currency, landed.valid_from, landed.rate_to_reporting
    from landed
    inner join (
        select currency, min(valid_from) as first_rate_date from landed group by currency
    ) as firsts on firsts.currency = landed.currency and firsts.first_rate_date = landed.valid_from
),

fixed as (
    select currency, rate_to_reporting from rates where rate_source = 'settings'
),

-- The latest landed rate date on or before each order day, without ASOF JOIN (Athena has none) or
-- a range join (quadratic in days x rates): order days and rate dates of a currency in one
-- timeline; a running max carries the last rate date forward (on a change day the rate comes
-- first). One lookup per currency and day, not per order.
order_days as (
    select distinct currency, order_date from orders where currency is not null
),

timeline as (
    select currency, order_date as on_date, cast(null as date) as rate_date, 0 as is_rate from order_days
    union all
    select currency, valid_from as on_date, valid_from as rate_date, 1 as is_rate from landed
),

carried as (
    select
        currency,
        on_date,
        is_rate,
        max(rate_date) over (
            partition by currency order by on_date, is_rate desc rows between unbounded preceding and current row
        ) as latest_rate_date
    from timeline
),

applied as (
    select
        carried.currency,
        carried.on_date as order_date,
        case
            when carried.currency = reporting.reporting_currency then cast(1 as decimal(24, 12))
            when landed.currency is not null then landed.rate_to_reporting
            when fixed.currency is not null then fixed.rate_to_reporting
            else earliest.rate_to_reporting
        end as rate_to_reporting,
        case
            when carried.currency = reporting.reporting_currency then cast(null as date)
            when landed.currency is not null then landed.valid_from
            when fixed.currency is not null then cast(null as date)
            else earliest.valid_from
        end as rate_date,
        cast(case
            when carried.currency = reporting.reporting_currency then 'reporting'
            when landed.currency is not null then 'landed'
            when fixed.currency is not null then 'settings'
            when earliest.currency is not null then 'landed_earliest'
        end as varchar) as rate_source
    from carried
    cross join reporting
    left join landed on landed.currency = carried.currency and landed.valid_from = carried.latest_rate_date
    left join fixed on fixed.currency = carried.currency
    left join earliest on earliest.currency = carried.currency
    where carried.is_rate = 0
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
        orders.order_source,
        cast(coalesce(lines.line_count, 0) as integer) as line_count,
        lines.order_id is not null as has_items,
        cast(
            case when lines.order_id is not null then lines.lines_amount else orders.order_total end
            as decimal(18, 2)
        ) as items_amount,
        applied.rate_to_reporting,
        applied.rate_date,
        applied.rate_source,
        reporting.reporting_currency
    from orders
    cross join reporting
    left join lines on lines.order_id = orders.order_id
    left join applied on applied.currency = orders.currency and applied.order_date = orders.order_date
)

select
    order_id,
    customer_id,
    ordered_at,
    order_date,
    status,
    currency,
    order_total,
    order_source,
    line_count,
    has_items,
    items_amount,
    rate_to_reporting,
    rate_date,
    rate_source,
    -- decimal(18,2) * decimal(24,12) is decimal(38,14) on DuckDB and Trino alike: no overflow, same cents.
    {{ money('items_amount * rate_to_reporting') }} as amount_reporting,
    reporting_currency
from amounts
