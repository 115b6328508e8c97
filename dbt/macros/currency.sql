{#- Currency vars and the check that every order can be converted. The rules (docs/pipeline.md,
    "Currencies"): the reporting currency is var `reporting_currency`, else the orders' currency
    when they use one, else the base currency of the landed rates when they have one; an order is
    converted with the latest landed rate on or before its date, before its currency's first landed
    rate with the fixed fallback of var `currency_rates` if given, else with that first rate. -#}

{% macro reporting_currency_var() -%}
  {#- The configured reporting currency, validated, or none (derive it from the data). -#}
  {%- set value = var('reporting_currency', none) -%}
  {%- if value is none or (value | string | trim) in ('', 'None', 'null') -%}
    {{- return(none) -}}
  {%- endif -%}
  {{- return(currency_code(value, 'var reporting_currency')) -}}
{%- endmacro %}


{% macro default_currency_var() -%}
  {{- return(currency_code(var('default_currency', 'EUR'), 'var default_currency')) -}}
{%- endmacro %}


{% macro currency_code(value, what) -%}
  {%- set text = value | string | trim -%}
  {%- if not modules.re.match('^[A-Z]{3}$', text) -%}
    {{- exceptions.raise_compiler_error(what ~ " must be an ISO 4217 code like 'EUR', got '" ~ text ~ "'") -}}
  {%- endif -%}
  {{- return(text) -}}
{%- endmacro %}


{% macro currency_rates_var() -%}
  {#- Fixed fallback rates {code: units of the reporting currency per unit}, validated. -#}
  {%- set rates = var('currency_rates', {}) or {} -%}
  {%- if rates is not mapping -%}
    {{- exceptions.raise_compiler_error("var currency_rates must map currency codes to rates, got " ~ rates) -}}
  {%- endif -%}
  {%- for code, rate in rates.items() -%}
    {%- do currency_code(code, 'var currency_rates') -%}
    {%- if not (rate is number and rate > 0) -%}
      {{- exceptions.raise_compiler_error("var currency_rates: the rate of " ~ code ~ " must be a number > 0, got " ~ rate) -}}
    {%- endif -%}
  {%- endfor -%}
  {{- return(rates) -}}
{%- endmacro %}


{% macro assert_currency_rates() -%}
  {#- Stops the build, naming what is missing, when the orders cannot all be converted: several
      currencies and no reporting currency, or currencies without any rate into it. Runs when the
      calling model is built (run_query needs its upstream views), not when it is compiled, parsed,
      documented or unit-tested. -#}
  {%- if execute and model.resource_type == 'model' and flags.WHICH in ('run', 'build') -%}
    {%- set query -%}
      with currencies as (
          select currency, count(*) as orders
          from {{ ref('int_orders__source') }}
          where currency is not null
          group by currency
      ),
      covered as (
          select distinct currency from {{ ref('int_currency_rates__to_reporting') }}
      )
      select
          currencies.currency,
          currencies.orders,
          reporting.reporting_currency,
          case when covered.currency is null then 0 else 1 end as has_rate
      from currencies
      cross join {{ ref('int_run__reporting_currency') }} as reporting
      left join covered on covered.currency = currencies.currency
      order by currencies.currency
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {%- set reporting = rows[0]['reporting_currency'] if rows | length > 0 else none -%}
    {%- if reporting is none and rows | length > 1 -%}
      {%- set listed = [] -%}
      {%- for row in rows -%}{%- do listed.append(row['currency']) -%}{%- endfor -%}
      {{- exceptions.raise_compiler_error(
          "the orders are in " ~ (rows | length) ~ " currencies (" ~ listed | join(', ') ~ ") and no reporting "
          ~ "currency is set: set reporting_currency in the settings (with fixed rates in currency_rates), or "
          ~ "land currency_rates quoted against one base currency (e.g. the ECB's EUR reference rates), "
          ~ "which then becomes the reporting currency") -}}
    {%- endif -%}
    {%- set missing = [] -%}
    {%- for row in rows -%}
      {%- if row['currency'] != reporting and row['has_rate'] == 0 -%}
        {%- set n = row['orders'] | int -%}
        {%- do missing.append(row['currency'] ~ " (" ~ n ~ (" order)" if n == 1 else " orders)")) -%}
      {%- endif -%}
    {%- endfor -%}
    {%- if missing -%}
      {{- exceptions.raise_compiler_error(
          "no exchange rate into the reporting currency " ~ reporting ~ " for " ~ missing | join(', ')
          ~ ": land them as currency_rates (rate_date, currency, rate, base_currency; docs/pipeline.md) or set "
          ~ "fixed fallback rates in settings currency_rates (units of " ~ reporting ~ " per unit)") -}}
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}


{% macro rfm_source_var() -%}
  {%- set source = var('rfm_source', 'orders') | string | trim -%}
  {%- if source not in ('orders', 'events') -%}
    {{- exceptions.raise_compiler_error("var rfm_source must be 'orders' or 'events', got '" ~ source ~ "'") -}}
  {%- endif -%}
  {{- return(source) -}}
{%- endmacro %}


{% macro purchase_event_types_var() -%}
  {%- set types = var('purchase_event_types', ['purchase']) -%}
  {%- if types is string -%}
    {%- set types = [types] -%}
  {%- endif -%}
  {%- if types | length == 0 -%}
    {{- exceptions.raise_compiler_error("var purchase_event_types must list at least one event type") -}}
  {%- endif -%}
  {%- set lowered = [] -%}
  {%- for t in types -%}{%- do lowered.append(t | string | trim | lower) -%}{%- endfor -%}
  {{- return(lowered | unique | sort) -}}
{%- endmacro %}
