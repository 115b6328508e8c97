"""The workspace a one-process stage runs in on a lake on S3 (moto server): it pulls what the stage
reads, and publishes only what the stage may write, its state and its file exports, or nothing."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aws_lake import PREFIX, new_bucket
from rfmlake.lake import Lake, open_lake
from rfmlake.lake.workspace import WorkspaceError, workspace
from rfmlake.settings import Settings


@pytest.fixture()
def s3_lake(aws) -> Lake:
    lake = open_lake(f"s3://{new_bucket(aws)}/lake", Settings(prefix=PREFIX), boto3_session=aws)
    lake.write_arrow("silver", "customers", pa.table({"customer_id": ["c1", "c2"]}))
    lake.write_arrow("gold", "customer_rfm", pa.table({"customer_id": ["c1"], "r_score": [5]}))
    return lake


def _objects(lake: Lake) -> set[str]:
    return {uri[len(lake.location) + 1:] for uri in lake.storage.walk(lake.location)}


def test_declared_writes_state_and_exports_are_published(s3_lake: Lake) -> None:
    with workspace(s3_lake, reads=("gold.*",), writes=("gold.customer_profile",), state=("activation",),
                   exports=("gold/_activation",)) as (local, report):
        assert [r.qualified_name for r in local.tables()] == ["gold.customer_rfm"]  # only what it reads
        local.write_arrow("gold", "customer_profile", pa.table({"customer_id": ["c1"]}))
        local.write_system(b"{}", "activation/journal.json")
        export = local.root / "gold" / "_activation" / "file" / "2026-12-01" / "sync-1" / "champions.csv"
        export.parent.mkdir(parents=True)
        export.write_text("customer_id\nc1\n")
    assert set(report.pushed) == {"gold.customer_profile"} and report.export_files_up == 1
    assert s3_lake.read_arrow(s3_lake.require("gold", "customer_profile")).column("customer_id").to_pylist() == ["c1"]
    assert "gold/_activation/file/2026-12-01/sync-1/champions.csv" in _objects(s3_lake)
    assert s3_lake.read_system("activation/journal.json") == b"{}"


def test_an_undeclared_table_publishes_nothing(s3_lake: Lake) -> None:
    before = _objects(s3_lake)
    with pytest.raises(WorkspaceError, match=r"committed gold.customer_value, outside what it may write "
                                             r"\(gold.customer_profile\); nothing was published"), \
            workspace(s3_lake, reads=("gold.*",), writes=("gold.customer_profile",), state=("activation",),
                      exports=("gold/_activation",)) as (local, _):
        local.write_arrow("gold", "customer_profile", pa.table({"customer_id": ["c1"]}))
        local.write_arrow("gold", "customer_value", pa.table({"customer_id": ["c1"]}))
        local.write_system(b"{}", "activation/journal.json")
        (local.root / "gold" / "_activation").mkdir(parents=True)
        (local.root / "gold" / "_activation" / "x.csv").write_text("x\n")
    assert _objects(s3_lake) == before
    assert s3_lake.current("gold", "customer_profile") is None


def test_a_failing_stage_publishes_nothing(s3_lake: Lake) -> None:
    before = _objects(s3_lake)
    with pytest.raises(RuntimeError, match="stage broke"), \
            workspace(s3_lake, reads=("silver.*",), writes=("gold.*",)) as (local, _):
        local.write_arrow("gold", "customer_profile", pa.table({"customer_id": ["c1"]}))
        raise RuntimeError("stage broke")
    assert _objects(s3_lake) == before


def test_tables_read_in_place_are_scanned_on_s3_and_partitions_are_appended(s3_lake: Lake) -> None:
    from rfmlake.lake.catalog import connect

    by = ("as_of_date",)
    for day in ("2026-01-01", "2026-01-02"):
        s3_lake.write_partitions("gold", "history", by, pa.table({"as_of_date": [day, day], "customer_id": ["c1", "c2"]}))
    with workspace(s3_lake, reads=("gold.*",), in_place=("gold.history",), writes=("gold.history",)) as (local, report):
        assert "gold.history" not in report.pulled and [r.qualified_name for r in local.local_tables()] == [
            "gold.customer_rfm"]
        ref = local.require("gold", "history")
        assert ref.uri.startswith("s3://") and len(ref.partitions) == 2
        con = connect(local, zones=("gold",))  # DuckDB reads the partitions on S3 (httpfs)
        assert con.execute("SELECT count(*), count(DISTINCT as_of_date) FROM gold.history").fetchone() == (4, 2)
        con.close()
        local.write_partitions("gold", "history", by, pa.table({"as_of_date": ["2026-01-03"], "customer_id": ["c1"]}))
    assert set(report.pushed) == {"gold.history"}
    after = s3_lake.require("gold", "history")
    assert [p.key for p in after.partitions] == [f"as_of_date=2026-01-0{d}" for d in (1, 2, 3)]
    assert s3_lake.count_rows(after) == 5


def test_a_partition_dropped_in_a_pulled_table_is_dropped_on_s3(s3_lake: Lake) -> None:
    by = ("day",)
    s3_lake.write_partitions("gold", "daily", by, pa.table({"day": ["1", "2"], "n": [1, 2]}))
    with workspace(s3_lake, reads=("gold.daily",), writes=("gold.daily",)) as (local, _):
        local.commit_partitions("gold", "daily", by, drop={"day=1"})
    assert [p.key for p in s3_lake.require("gold", "daily").partitions] == ["day=2"]


def test_a_partitioned_table_pulled_and_left_alone_is_not_published(s3_lake: Lake) -> None:
    s3_lake.write_partitions("gold", "daily", ("day",), pa.table({"day": ["1", "2"], "n": [1, 2]}))
    before = s3_lake.require("gold", "daily").version
    with workspace(s3_lake, reads=("gold.*",), writes=("gold.customer_profile",)) as (local, report):
        assert "gold.daily" in report.pulled
        local.write_arrow("gold", "customer_profile", pa.table({"customer_id": ["c1"]}))
    assert set(report.pushed) == {"gold.customer_profile"}
    assert s3_lake.require("gold", "daily").version == before
