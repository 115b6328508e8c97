{#- Run parameters of the RFM features, read from vars and checked here so that a bad value
    stops compilation with a readable message instead of producing wrong numbers. -#}

{% macro as_of_date_var() -%}
  {#- The as_of date given to the run, as a validated 'YYYY-MM-DD' string, or none. -#}
  {%- set value = var('as_of_date', none) -%}
  {%- if value is none or (value | string | trim) in ('', 'None', 'null') -%}
    {{- return(none) -}}
  {%- endif -%}
  {%- set text = value | string | trim -%}
  {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', text) -%}
    {{- exceptions.raise_compiler_error("var as_of_date must be a date YYYY-MM-DD, got '" ~ text ~ "'") -}}
  {%- endif -%}
  {%- do modules.datetime.datetime.strptime(text, '%Y-%m-%d') -%}
  {{- return(text) -}}
{%- endmacro %}


{% macro lookback_days_var() -%}
  {%- set value = var('lookback_days', none) -%}
  {%- if value is none or (value | string | trim) in ('', 'None', 'null') -%}
    {{- return(none) -}}
  {%- endif -%}
  {%- set text = value | string | trim -%}
  {%- if not modules.re.match('^[0-9]+$', text) or (text | int) < 1 -%}
    {{- exceptions.raise_compiler_error("var lookback_days must be a whole number >= 1 or null, got '" ~ text ~ "'") -}}
  {%- endif -%}
  {{- return(text | int) -}}
{%- endmacro %}


{% macro returns_policy_var() -%}
  {%- set policy = var('returns_policy', 'exclude') | string | trim -%}
  {%- if policy not in ('exclude', 'net') -%}
    {{- exceptions.raise_compiler_error("var returns_policy must be 'exclude' or 'net', got '" ~ policy ~ "'") -}}
  {%- endif -%}
  {%- if policy == 'exclude' and 'returned' in counted_statuses_var() -%}
    {{- exceptions.raise_compiler_error(
        "var counted_statuses lists 'returned' but returns_policy is 'exclude'; "
        ~ "use returns_policy 'net' to count returned orders (with zero revenue)") -}}
  {%- endif -%}
  {{- return(policy) -}}
{%- endmacro %}


{% macro counted_statuses_var() -%}
  {%- set statuses = var('counted_statuses', ['completed']) -%}
  {%- if statuses is string -%}
    {%- set statuses = [statuses] -%}
  {%- endif -%}
  {%- set allowed = ['completed', 'pending', 'cancelled', 'returned'] -%}
  {%- if statuses | length == 0 -%}
    {{- exceptions.raise_compiler_error("var counted_statuses must list at least one status") -}}
  {%- endif -%}
  {%- for status in statuses -%}
    {%- if status not in allowed -%}
      {{- exceptions.raise_compiler_error("var counted_statuses: unknown status '" ~ status ~ "'; allowed: " ~ allowed | join(', ')) -}}
    {%- endif -%}
  {%- endfor -%}
  {{- return(statuses | sort) -}}
{%- endmacro %}


{% macro sql_string_list(values) -%}
  {%- set quoted = [] -%}
  {%- for value in values -%}
    {%- do quoted.append(dbt.string_literal(value)) -%}
  {%- endfor -%}
  ({{ quoted | join(', ') }})
{%- endmacro %}


{% macro cast_date(expression) -%}
  {#- dateadd returns a timestamp on duckdb and a date on athena: normalise to date. -#}
  cast({{ expression }} as date)
{%- endmacro %}


{% macro money(expression) -%}
  {#- Amounts are decimal(18,2), rounded half away from zero, on both engines. -#}
  cast(round({{ expression }}, 2) as decimal(18, 2))
{%- endmacro %}


{% macro is_counted_status(status_column) -%}
  {#- True for orders that count as purchases: a status in var counted_statuses, plus returned
      orders when returns_policy is 'net' (they count for recency/frequency with zero revenue). -#}
  {%- set policy = returns_policy_var() -%}
  ({{ status_column }} in {{ sql_string_list(counted_statuses_var()) }}
  {%- if policy == 'net' %} or {{ status_column }} = 'returned'{% endif %})
{%- endmacro %}
