"""The lake on S3 (moto server): versions, atomic commits through Glue table locations or pointer
objects, reads and vacuum behave as they do on a local folder."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_lake import PREFIX, new_bucket
from rfmlake.lake import Lake, open_lake
from rfmlake.lake.glue import CatalogError
from rfmlake.lake.storage import StorageError
from rfmlake.settings import Settings


@pytest.fixture()
def s3_lake(aws) -> Lake:
    bucket = new_bucket(aws)
    return open_lake(f"s3://{bucket}/lake/", Settings(prefix=PREFIX), boto3_session=aws)


def test_s3_lake_uses_glue_locations_as_pointers(s3_lake: Lake, aws) -> None:
    assert s3_lake.catalog is not None and s3_lake.location.endswith("/lake")
    ref = s3_lake.write_arrow("silver", "orders", pa.table({"order_id": ["a", "b"], "amount": [1.5, 2.0]}))
    assert ref.uri.startswith(f"{s3_lake.location}/silver/orders/versions/")
    table = aws.client("glue").get_table(DatabaseName=f"{PREFIX}_silver", Name="orders")["Table"]
    assert table["StorageDescriptor"]["Location"] == ref.uri + "/"
    assert [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]] == [
        ("order_id", "string"), ("amount", "double")]
    assert table["Parameters"]["rfmlake_version"] == ref.version
    bucket, key = ref.uri.removeprefix("s3://").split("/", 1)
    pointer = aws.client("s3").get_object(Bucket=bucket, Key=key.split("/versions/")[0] + "/_current")["Body"].read()
    assert ref.version.encode() in pointer  # its Object Created event starts the downstream Lambdas
    assert s3_lake.current("silver", "orders") == ref
    assert s3_lake.read_arrow(ref).column("order_id").to_pylist() == ["a", "b"]
    assert s3_lake.count_rows(ref) == 2
    assert [r.qualified_name for r in s3_lake.tables()] == ["silver.orders"]


def test_a_new_commit_swaps_the_location_and_an_orphan_stays_invisible(s3_lake: Lake) -> None:
    first = s3_lake.write_arrow("gold", "t", pa.table({"x": [1]}))
    orphan = s3_lake.new_version("gold", "t")  # a writer that crashed before its commit
    s3_lake.write_version(orphan, pa.table({"x": [1, 2, 3]}))
    assert s3_lake.current("gold", "t") == first
    second = s3_lake.write_arrow("gold", "t", pa.table({"x": [7, 8]}))
    assert s3_lake.current("gold", "t") == second
    assert s3_lake.read_arrow(s3_lake.require("gold", "t")).column("x").to_pylist() == [7, 8]


def test_marker_files_are_not_data(s3_lake: Lake) -> None:
    version = s3_lake.new_version("bronze", "orders")
    s3_lake.write_version(version, pa.table({"x": [1, 2]}))
    s3_lake.storage.write_bytes(version + "/_SUCCESS", b"")
    s3_lake.storage.write_bytes(version + "/.part-00000.parquet.crc", b"junk")
    assert s3_lake.files(version) == [version + "/part-00000.parquet"]
    assert s3_lake.count_rows(s3_lake.commit("bronze", "orders", version)) == 2


def test_commit_refuses_an_empty_version_and_a_missing_database(s3_lake: Lake, aws) -> None:
    with pytest.raises(ValueError, match="holds no Parquet files"):
        s3_lake.commit("silver", "x", s3_lake.new_version("silver", "x"))
    aws.client("glue").delete_database(Name=f"{PREFIX}_gold")
    with pytest.raises(CatalogError, match=f"Glue database {PREFIX}_gold does not exist"):
        s3_lake.write_arrow("gold", "t", pa.table({"x": [1]}))


def test_tables_built_by_dbt_athena_are_read_through_their_glue_location(s3_lake: Lake, aws) -> None:
    # dbt-athena writes extension-less files under a location of its own choosing.
    bucket = s3_lake.location.split("/")[2]
    location = f"s3://{bucket}/dbt/gold/customer_rfm_features/8f0c"
    s3_lake.storage.write_bytes(location + "/20261122_000001_00000_abcd", _parquet(pa.table({"customer_id": ["c1"]})))
    aws.client("glue").create_table(DatabaseName=f"{PREFIX}_gold", TableInput={
        "Name": "customer_rfm_features", "StorageDescriptor": {"Location": location + "/", "Columns": []}})
    ref = s3_lake.require("gold", "customer_rfm_features")
    assert ref.uri == location and ref.version == "8f0c"
    assert s3_lake.read_arrow(ref).column("customer_id").to_pylist() == ["c1"]


def test_without_glue_the_pointer_is_an_object_beside_the_versions(aws) -> None:
    bucket = new_bucket(aws, glue_prefix=None)
    lake = open_lake(f"s3://{bucket}/l", Settings(lake_catalog="files"), boto3_session=aws)
    assert lake.catalog is None
    ref = lake.write_arrow("gold", "t", pa.table({"x": [1]}))
    pointer = aws.client("s3").get_object(Bucket=bucket, Key="l/gold/t/_current")["Body"].read()
    assert ref.version.encode() in pointer
    assert Lake(f"s3://{bucket}/l", boto3_session=aws).current("gold", "t") == ref


def test_vacuum_on_s3_uses_the_version_time(s3_lake: Lake) -> None:
    refs = [s3_lake.write_arrow("silver", "t", pa.table({"x": [i]})) for i in range(3)]
    young_orphan = s3_lake.new_version("silver", "t")
    s3_lake.write_version(young_orphan, pa.table({"x": [9]}))
    removed = s3_lake.vacuum(keep=2)
    assert removed == [refs[0].uri]
    remaining = [n for n, _ in s3_lake.storage.children(f"{s3_lake.location}/silver/t/versions")]
    assert remaining == sorted([refs[1].version, refs[2].version, young_orphan.rsplit("/", 1)[1]])


def test_local_only_steps_say_so_on_an_s3_lake(s3_lake: Lake) -> None:
    with pytest.raises(StorageError, match="on S3; this step needs a local lake"):
        _ = s3_lake.system_dir
    ref = s3_lake.write_arrow("gold", "t", pa.table({"x": [1]}))
    with pytest.raises(StorageError, match="gold.t is on S3"):
        _ = ref.path


def test_system_files_round_trip(s3_lake: Lake) -> None:
    assert s3_lake.read_system("pii_key.fingerprint") is None
    s3_lake.write_system(b"abc", "pii_key.fingerprint")
    assert s3_lake.read_system("pii_key.fingerprint") == b"abc"


def test_a_malformed_s3_location_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="is not an s3://bucket/prefix location"):
        Lake("s3://")


def _parquet(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def test_partitioned_table_on_s3_follows_its_pointer_in_glue_partitions(s3_lake: Lake, aws) -> None:
    """The pointer object is the commit; Glue holds one partition per committed partition version
    (partition keys apart from the columns), so Athena reads exactly what the lake's readers read."""
    by = ("as_of_date",)
    s3_lake.write_partitions("gold", "h", by, pa.table({"as_of_date": ["d1", "d1", "d2"], "customer_id": ["a", "b", "a"]}))
    ref = s3_lake.write_partitions("gold", "h", by, pa.table({"as_of_date": ["d2"], "customer_id": ["c"]}))
    glue = aws.client("glue")
    table = glue.get_table(DatabaseName=f"{PREFIX}_gold", Name="h")["Table"]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["as_of_date"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["customer_id"]
    partitions = glue.get_partitions(DatabaseName=f"{PREFIX}_gold", TableName="h")["Partitions"]
    assert {tuple(p["Values"]): p["StorageDescriptor"]["Location"] for p in partitions} == {
        ("d1",): ref.partitions[0].uri + "/", ("d2",): ref.partitions[1].uri + "/"}
    assert s3_lake.current("gold", "h") == ref
    assert sorted(s3_lake.read_arrow(ref).column("customer_id").to_pylist()) == ["a", "b", "c"]
    s3_lake.commit_partitions("gold", "h", by, drop={"as_of_date=d1"})
    partitions = glue.get_partitions(DatabaseName=f"{PREFIX}_gold", TableName="h")["Partitions"]
    assert [p["Values"] for p in partitions] == [["d2"]]


def test_workspace_round_trip_of_a_partitioned_table_keeps_partition_versions(s3_lake: Lake, tmp_path) -> None:
    from rfmlake.lake.workspace import workspace

    by = ("as_of_date",)
    before = s3_lake.write_partitions("gold", "h", by, pa.table({"as_of_date": ["d1", "d2"], "customer_id": ["a", "b"]}))
    with workspace(s3_lake, reads=("gold.h",), writes=("gold.h",), scratch=tmp_path) as (local, report):
        assert local.count_rows(local.require("gold", "h")) == 2
        local.write_partitions("gold", "h", by, pa.table({"as_of_date": ["d3"], "customer_id": ["c"]}))
    assert set(report.pushed) == {"gold.h"}
    after = s3_lake.require("gold", "h")
    assert [p.key for p in after.partitions] == ["as_of_date=d1", "as_of_date=d2", "as_of_date=d3"]
    assert after.partitions[:2] == before.partitions  # untouched partitions keep their version folders
    assert sorted(s3_lake.read_arrow(after).column("customer_id").to_pylist()) == ["a", "b", "c"]
