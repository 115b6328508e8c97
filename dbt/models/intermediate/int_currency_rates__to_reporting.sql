{#- The rates the marts convert with: per currency, each landed rate into the reporting currency
    with the days it applies (valid_from until the currency's next landed rate, valid_to,
    exclusive; the last one open-ended), and the fixed fallback rates of var currency_rates
    (setting currency_rates; no dates). A landed rate is used directly when quoted against the
    currency (1 unit = rate units of the reporting currency), inverted when the reporting currency is
    the base, or crossed through a base both are quoted against on the same day; of several on one
    day the direct one wins, then the inverted one, then the cross rate through the
    alphabetically first base. Computed in double, kept as decimal(24,12), so both engines convert
    alike. -#}
{%- set fixed = currency_rates_var() -%}

with

reporting as (
    select reporting_currency from {{ ref('int_run__reporting_currency') }}
),

landed as (
    select * from {{ ref('stg_silver__currency_rates') }}
    where base_currency <> currency
),

quotes as (
    select
        landed.base_currency as currency,
        landed.rate_date,
        landed.rate as rate_to_reporting,
        landed.base_currency as quoted_against,
        1 as preference
    from landed
    cross join reporting
    where landed.currency = reporting.reporting_currency

    union all

    select
        landed.currency,
        landed.rate_date,
        1.0 / landed.rate as rate_to_reporting,
        landed.base_currency as quoted_against,
        2 as preference
    from landed
    cross join reporting
    where landed.base_currency = reporting.reporting_currency

    union all

    select
        quoted.currency,
        quoted.rate_date,
        into_reporting.rate / quoted.rate as rate_to_reporting,
        quoted.base_currency as quoted_against,
        3 as preference
    from landed as quoted
    inner join landed as into_reporting
        on into_reporting.base_currency = quoted.base_currency
        and into_reporting.rate_date = quoted.rate_date
    cross join reporting
    where into_reporting.currency = reporting.reporting_currency
      and quoted.currency <> reporting.reporting_currency
      and quoted.base_currency <> reporting.reporting_currency
),

chosen as (
    select
        *,
        row_number() over (partition by currency, rate_date order by preference, quoted_against) as choice
    from quotes
)

select
    currency,
    rate_date as valid_from,
    lead(rate_date) over (partition by currency order by rate_date) as valid_to,
    cast(rate_to_reporting as decimal(24, 12)) as rate_to_reporting,
    cast('landed' as varchar) as rate_source,
    quoted_against
from chosen
where choice = 1
{%- for code, rate in fixed.items() | sort %}

union all

select
    cast({{ dbt.string_literal(code) }} as varchar) as currency,
    cast(null as date) as valid_from,
    cast(null as date) as valid_to,
    cast({{ '%.12f' | format(rate) }} as decimal(24, 12)) as rate_to_reporting,
    cast('settings' as varchar) as rate_source,
    cast(null as varchar) as quoted_against
{%- endfor %}
