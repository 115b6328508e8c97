{#- One row: the currency every amount is reported in. Var reporting_currency when set; else the
    currency of the orders when they use one; else the base currency of the landed rates when they
    are quoted against one (an ECB export: EUR); else, when no order has a currency at all, var
    default_currency. Null otherwise: several currencies and nothing to choose by, which
    int_orders__amounts reports as an error naming them. -#}
{%- set configured = reporting_currency_var() -%}

with

order_currencies as (
    select count(distinct currency) as currencies, max(currency) as only_currency
    from {{ ref('int_orders__source') }}
    where currency is not null
),

rate_bases as (
    select count(distinct base_currency) as bases, max(base_currency) as only_base
    from {{ ref('stg_silver__currency_rates') }}
    where base_currency <> currency
)

select
    {%- if configured is not none %}
    cast({{ dbt.string_literal(configured) }} as varchar) as reporting_currency
    {%- else %}
    cast(
        case
            when order_currencies.currencies = 1 then order_currencies.only_currency
            when rate_bases.bases = 1 then rate_bases.only_base
            when order_currencies.currencies = 0 then {{ dbt.string_literal(default_currency_var()) }}
        end
        as varchar
    ) as reporting_currency
    {%- endif %}
from order_currencies
cross join rate_bases
