{#- The prefix of every schema this project reads or writes: '' locally, so the layers are exactly
    `silver`, `staging`, `intermediate`, `gold`; '<prefix>_' on Athena, where each zone is a Glue
    database `<prefix>_silver`, `<prefix>_gold` (DESIGN.md section 4). The runner passes the var;
    the target-based default keeps hand-run dbt commands right. -#}
{% macro schema_prefix() -%}
  {%- set prefix = var('schema_prefix', none) -%}
  {%- if prefix is none -%}
    {%- set prefix = 'rfmlake_' if target.type == 'athena' else '' -%}
  {%- endif -%}
  {{- return(prefix) -}}
{%- endmacro %}


{#- Each layer goes to its own schema, named by the folder's `+schema` and never glued to the
    target schema (dbt's default would give `main_gold`). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%}
    {{- target.schema | trim -}}
  {%- else -%}
    {{- schema_prefix() ~ (custom_schema_name | trim) -}}
  {%- endif -%}
{%- endmacro %}
