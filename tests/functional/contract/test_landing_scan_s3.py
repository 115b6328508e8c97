"""scan_landing on an S3 landing (moto server): the same files, formats and sizes as the scan of the
same folder on disk, and the same message for each way the landing can be wrong."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_lake import new_bucket, upload_folder
from rfmlake.contract.landing import scan_landing
from rfmlake.errors import LandingError


def _file(path: Path, data: bytes = b"a,b\n1,2\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _landing(root: Path) -> Path:
    """Every format, a nested folder, an empty file, and what is not data (manifest, hidden files,
    Spark's _temporary)."""
    landing = root / "landing"
    _file(landing / "customers" / "crm.csv", b"customer_id,email\nc1,a@x.com\n")
    _file(landing / "orders" / "b.csv")
    _file(landing / "orders" / "2024" / "a.jsonl", b'{"order_id": "1"}\n')
    _file(landing / "orders" / ".hidden.csv")
    _file(landing / "orders" / "_temporary" / "part.csv")
    _file(landing / "access_logs" / "web.log", b"")
    (landing / "products").mkdir()
    pq.write_table(pa.table({"product_id": ["p1"]}), landing / "products" / "p.parquet")
    _file(landing / "_generator_manifest.json", b"{}")
    _file(landing / ".DS_Store", b"x")
    return landing


@pytest.fixture()
def bucket(aws) -> str:  # type: ignore[no-untyped-def]
    return new_bucket(aws, glue_prefix=None)


def _prefix(bucket: str) -> str:
    return f"s3://{bucket}/landing-{uuid.uuid4().hex[:6]}"


def test_s3_scan_matches_the_local_scan(aws, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = _landing(tmp_path)
    location = upload_folder(aws, landing, _prefix(bucket))

    local = scan_landing(landing)
    remote = scan_landing(location + "/", boto3_session=aws)  # a trailing slash changes nothing

    assert [(f.entity, f.relative_path, f.format, f.size) for f in remote] == [
        (f.entity, f.relative_path, f.format, f.size) for f in local
    ]
    assert [f.relative_path for f in remote] == [
        "access_logs/web.log", "customers/crm.csv", "orders/2024/a.jsonl", "orders/b.csv", "products/p.parquet",
    ]
    assert [f.uri for f in remote] == [f"{location}/{f.relative_path}" for f in remote]
    assert [f.uri for f in local] == [str(landing.resolve() / f.relative_path) for f in local]
    with pytest.raises(LandingError, match="orders/b.csv is on S3"):
        _ = remote[3].path


def _unknown_folder(landing: Path) -> None:
    _file(landing / "orders" / "a.csv")
    _file(landing / "invoices" / "a.csv")


def _unknown_file(landing: Path) -> None:
    _file(landing / "orders" / "a.csv")
    _file(landing / "notes.txt")


def _entity_as_file(landing: Path) -> None:
    _file(landing / "orders")


def _wrong_extension(landing: Path) -> None:
    _file(landing / "access_logs" / "web.csv")


def _fake_parquet(landing: Path) -> None:
    _file(landing / "orders" / "o.parquet", b"order_id\n1\n")


def _empty_input(landing: Path) -> None:
    _file(landing / "orders" / ".keep", b"")
    _file(landing / "_generator_manifest.json", b"{}")


@pytest.mark.parametrize("make,expected", [
    (_unknown_folder, "unknown entity folder 'invoices' in landing folder"),
    (_unknown_file, "unknown entity file 'notes.txt' in landing folder"),
    (_entity_as_file, "'orders' in landing folder"),
    (_wrong_extension, "access_logs/web.csv has extension '.csv'"),
    (_fake_parquet, "orders/o.parquet is not a Parquet file"),
    (_empty_input, "empty input: landing folder"),
])
def test_each_violation_gives_the_local_message(aws, bucket: str, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                make: Callable[[Path], None], expected: str) -> None:
    landing = tmp_path / "landing"
    make(landing)
    location = upload_folder(aws, landing, _prefix(bucket))
    with pytest.raises(LandingError) as local:
        scan_landing(landing)
    with pytest.raises(LandingError) as remote:
        scan_landing(location, boto3_session=aws)
    assert expected in str(local.value)
    assert str(remote.value) == str(local.value).replace(str(landing), location)


def test_missing_prefix_bucket_and_an_object_instead_of_a_prefix(aws, bucket: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LandingError, match=rf"landing folder s3://{bucket}/nowhere does not exist: "
                                           "there are no objects under that prefix"):
        scan_landing(f"s3://{bucket}/nowhere", boto3_session=aws)
    with pytest.raises(LandingError, match=r"landing folder s3://no-such-bucket-x1/landing does not exist: "
                                           r"there is no bucket 'no-such-bucket-x1'"):
        scan_landing("s3://no-such-bucket-x1/landing", boto3_session=aws)
    aws.client("s3").put_object(Bucket=bucket, Key="export.csv", Body=b"a\n1\n")
    with pytest.raises(LandingError, match=rf"landing folder s3://{bucket}/export.csv is an object, not a prefix"):
        scan_landing(f"s3://{bucket}/export.csv", boto3_session=aws)
    with pytest.raises(LandingError, match="is not an s3://bucket/prefix location"):
        scan_landing("s3://", boto3_session=aws)
