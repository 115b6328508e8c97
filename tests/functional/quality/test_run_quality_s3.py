"""The quality checks on a lake on S3 (moto server, Glue catalog): DuckDB reads the s3:// Parquet in
place through httpfs, with the same report as on a local lake, and the stage copies nothing into a
workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from quality_tables import silver_tables, write_table

from aws_lake import PREFIX, new_bucket
from rfmlake.lake import Lake, open_lake
from rfmlake.lake.catalog import connect
from rfmlake.quality import QualityContext, RowScope, run_quality
from rfmlake.settings import Settings, load_settings


@pytest.fixture()
def s3_lake(aws) -> Lake:
    return open_lake(f"s3://{new_bucket(aws)}/lake", Settings(prefix=PREFIX), boto3_session=aws)


def _write_silver(lake: Lake, skip: tuple[str, ...] = (), **changes: dict) -> Lake:
    for name, columns in silver_tables().items():
        if name not in skip:
            write_table(lake, "silver", name, {**columns, **changes.get(name, {})})
    return lake


def _without_duration(report_dict: dict) -> dict:
    return {k: v for k, v in report_dict.items() if k != "duration_seconds"}


def test_catalog_views_read_s3_in_place(s3_lake: Lake) -> None:
    _write_silver(s3_lake)
    con = connect(s3_lake, zones=("silver",))
    try:
        assert con.execute("SELECT count(*), min(order_id) FROM silver.orders").fetchone() == (4, "o1")
        [(source,)] = con.execute(
            "SELECT sql FROM duckdb_views() WHERE schema_name = 'silver' AND view_name = 'orders'").fetchall()
    finally:
        con.close()
    assert f"{s3_lake.require('silver', 'orders').uri}/" in source  # the committed version's s3:// files


def test_report_on_s3_equals_the_local_report(s3_lake: Lake, lake: Lake, quality_context: QualityContext) -> None:
    bad = {"orders": {"order_id": ["o1", "o1", "o3", "o4"], "currency": ["EUR", "XXX", "EUR", "EUR"]}}
    _write_silver(s3_lake, **bad)
    _write_silver(lake, **bad)
    scope = {"silver.orders": RowScope.of_files(["f1.csv"])}

    remote = run_quality(s3_lake, "silver", context=quality_context, scope=scope)
    local = run_quality(lake, "silver", context=quality_context, scope=scope)

    assert _without_duration(remote.to_dict()) == _without_duration(local.to_dict())
    assert {(e.expectation, e.unexpected_count) for e in remote.critical_failures} == {
        ("expect_column_values_to_be_unique", 2), ("expect_column_values_to_be_in_set", 1)}


def test_quality_stage_reads_s3_in_place_and_writes_its_reports_there(
        aws, s3_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rfmlake.lake import workspace as workspace_module
    from rfmlake.pipeline.remote import run_stage

    _write_silver(s3_lake, order_items={"quantity": [1, -2, 1, 3]})

    def no_workspace(*args: object, **kwargs: object) -> None:
        raise AssertionError("the quality stage must not copy the lake into a workspace")

    monkeypatch.setattr(workspace_module, "workspace", no_workspace)
    config = tmp_path / "aws.yaml"
    config.write_text(f"prefix: {PREFIX}\nreporting_currency: EUR\ncurrency_rates: {{USD: 0.92}}\n")
    assert load_settings(config).prefix == PREFIX

    from rfmlake.errors import QualityError

    with pytest.raises(QualityError, match=r"silver.order_items \(4 rows\)\n  FAIL critical "
                                           r"expect_column_values_to_be_between \[quantity\]"):
        run_stage("quality_silver", lake=s3_lake.location, config=str(config), run_id="aws-run")

    saved = json.loads(s3_lake.read_system("runs", "aws-run", "quality_silver.json") or b"{}")
    assert saved["passed"] is False and saved["zone"] == "silver"
    text = (s3_lake.read_system("runs", "aws-run", "quality_silver.txt") or b"").decode()
    assert "silver.order_items (4 rows)" in text


def test_partitioned_silver_on_s3_scoped_by_partition(s3_lake: Lake, lake: Lake,
                                                      quality_context: QualityContext) -> None:
    """Silver as ingestion writes it (partitioned by load date and landing file), read in place;
    the scope filters on the partition column, so DuckDB reads only those partitions' files."""
    orders = {**silver_tables()["orders"], "currency": ["EUR", "XXX", "EUR", "EUR"],
              "_load_date": ["2024-05-01", "2024-05-01", "2024-05-02", "2024-05-02"],
              "_file": ["f0", "f1", "f2", "f3"]}
    reports = []
    for target in (s3_lake, lake):
        _write_silver(target, skip=("orders",))
        target.write_partitions("silver", "orders", ("_load_date", "_file"), pa.table(orders))
        assert target.require("silver", "orders").is_partitioned
        newest = {"silver.orders": RowScope(predicate="_file IN ('f2', 'f3')")}
        reports.append((run_quality(target, "silver", context=quality_context, scope=newest),
                        run_quality(target, "silver", context=quality_context)))

    (scoped, whole), (local_scoped, local_whole) = reports
    assert _without_duration(scoped.to_dict()) == _without_duration(local_scoped.to_dict())
    assert _without_duration(whole.to_dict()) == _without_duration(local_whole.to_dict())
    scoped.raise_for_critical()
    assert scoped.table("silver.orders").rows_in_scope == 2
    [failure] = whole.critical_failures
    assert (failure.columns, failure.unexpected_rows) == (("currency",), ({"order_id": "o2"},))
