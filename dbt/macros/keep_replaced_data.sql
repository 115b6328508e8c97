{#-
  On Athena, a table that dbt-athena replaces is dropped from the Glue catalog only: its data stays in
  its own folder under s3_data_dir (s3_data_naming: schema_table_unique gives every build a new one).
  dbt-athena 1.11's own drop (drop_relation_glue) deletes that data first, and a failed run's rollback
  could then not point the mart back at what it was before the run (docs/adr/0016,
  rfmlake.pipeline.rollback). The next run's start deletes the data no table reads any more
  (rfmlake.lake.dbt_data.delete_unread_dbt_data), and so does erasure.
  This overrides the adapter's athena__drop_relation (dbt dispatches to the root project first). The
  project builds Hive tables and views only: an Iceberg or S3 Tables relation is refused here rather
  than dropped in a way nobody tested.
-#}
{% macro athena__drop_relation(relation) -%}
  {%- set table_type = adapter.get_glue_table_type(relation) -%}
  {%- if table_type is not none and table_type.value == 'iceberg_table' -%}
    {%- do exceptions.raise_compiler_error('rfmlake keeps replaced Hive tables only; ' ~ relation ~ ' is Iceberg') -%}
  {%- endif -%}
  {%- do log('Dropping relation ' ~ relation ~ ' from the Glue catalog; its data stays for a rollback') -%}
  {%- do adapter.delete_from_glue_catalog(relation) -%}
{%- endmacro %}
