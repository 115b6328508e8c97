"""dbt-athena drops a mart it replaces (the table materialization's non-ha Hive path: drop_relation,
then CTAS into a new folder). The project's athena__drop_relation (dbt/macros/keep_replaced_data.sql)
removes the Glue table and keeps its data, so that a failed run's rollback can point the mart back at
it (docs/adr/0016). dbt runs here with the athena target against a moto server (Glue and S3; Athena SQL
is not served, the drop needs none): the project's own drop, through dbt's dispatch, as the table
materialization calls it."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from aws_lake import PREFIX, new_bucket
from rfmlake.lake import open_lake
from rfmlake.lake.storage import Storage
from rfmlake.modeling.dbt_runner import invoke_dbt
from rfmlake.modeling.project import find_project_dir, write_profiles
from rfmlake.settings import load_settings

# What the table materialization does with the mart it replaces (dbt-athena 1.11, table.sql).
DROP_AS_THE_MATERIALIZATION_DOES = """
{% macro rfmlake_test_replace_drop(schema, identifier) %}
  {%- set old_relation = adapter.get_relation(database=target.database, schema=schema, identifier=identifier) -%}
  {%- if old_relation is none -%}
    {{ exceptions.raise_compiler_error('no relation ' ~ schema ~ '.' ~ identifier) }}
  {%- endif -%}
  {{ drop_relation(old_relation) }}
{% endmacro %}
"""


def drop_mart(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, keep_macro: bool) -> tuple[bool, bool]:
    """A mart built by an earlier run (Glue table + data under gold/_dbt/), dropped through dbt;
    returns (the Glue table is gone, its data is still there)."""
    bucket = new_bucket(aws)
    lake = open_lake(f"s3://{bucket}", load_settings(overrides={"prefix": PREFIX}), boto3_session=aws)
    location = Storage.join(lake.location, "gold", "_dbt", f"{PREFIX}_gold", "customer_rfm", str(uuid.uuid4()))
    lake.write_version(location, pa.table({"customer_id": ["C1", "C2"]}))
    glue = aws.client("glue")
    glue.create_table(DatabaseName=f"{PREFIX}_gold", TableInput={
        "Name": "customer_rfm", "TableType": "EXTERNAL_TABLE", "Parameters": {"classification": "parquet"},
        "StorageDescriptor": {"Columns": [{"Name": "customer_id", "Type": "string"}], "Location": location + "/",
                              "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                              "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                              "SerdeInfo": {"SerializationLibrary":
                                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}})
    project = tmp_path / "dbt"
    shutil.copytree(find_project_dir(), project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    if not keep_macro:
        (project / "macros" / "keep_replaced_data.sql").unlink()
    (project / "macros" / "rfmlake_test_replace_drop.sql").write_text(DROP_AS_THE_MATERIALIZATION_DOES)
    write_profiles(tmp_path / "profiles", tmp_path / "unused.duckdb", PREFIX)
    monkeypatch.setenv("DO_NOT_TRACK", "1")
    monkeypatch.setenv("RFMLAKE_ATHENA_S3_STAGING_DIR", f"s3://{bucket}/athena-results/")
    monkeypatch.setenv("RFMLAKE_ATHENA_S3_DATA_DIR", f"s3://{bucket}/gold/_dbt/")
    ok, _, error = invoke_dbt(
        ["run-operation", "rfmlake_test_replace_drop", "--args",
         json.dumps({"schema": f"{PREFIX}_gold", "identifier": "customer_rfm"})],
        project_dir=project, profiles_dir=tmp_path / "profiles", target="athena",
        target_path=tmp_path / "target", log_path=tmp_path / "logs")
    assert ok, (error, (tmp_path / "logs" / "dbt.log").read_text()[-3000:])
    gone = not glue.get_tables(DatabaseName=f"{PREFIX}_gold")["TableList"]
    return gone, bool(lake.storage.files(location))


def test_a_mart_dbt_replaces_keeps_its_data_for_the_rollback(aws, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert drop_mart(aws, tmp_path, monkeypatch, keep_macro=True) == (True, True)


def test_without_the_project_s_drop_dbt_athena_deletes_the_replaced_data(aws, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # what the override is for: dbt-athena 1.11's drop_relation_glue deletes the table's S3 data
    assert drop_mart(aws, tmp_path, monkeypatch, keep_macro=False) == (True, False)
