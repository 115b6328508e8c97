"""What the Spark stages do around Spark on S3 (moto server): the CSV header pre-check reads the
landed object, the PII key fingerprint lives in the lake on S3 and no key is generated there, the
suppression list is read from the lake on S3, and the Glue entry script fails cleanly on a bad S3
landing before Spark starts. (Spark itself reads s3:// only on Glue: no S3 connector locally.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aws_lake import new_bucket, upload_folder
from rfmlake.contract.landing import scan_landing
from rfmlake.errors import ConfigError, LandingError, RfmlakeError
from rfmlake.ingest.bronze import csv_header
from rfmlake.ingest.pii import resolve_pii_key, tokenize
from rfmlake.ingest.suppression import load_suppression
from rfmlake.lake import Lake
from rfmlake.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture()
def bucket(aws) -> str:  # type: ignore[no-untyped-def]
    return new_bucket(aws, glue_prefix=None)


@pytest.fixture()
def s3_lake(aws, bucket: str) -> Lake:  # type: ignore[no-untyped-def]
    return Lake(f"s3://{bucket}/lake", boto3_session=aws)


def _keys(aws, bucket: str) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(o["Key"] for o in aws.client("s3").list_objects_v2(Bucket=bucket).get("Contents", []))


def test_csv_header_is_read_from_the_landed_object(aws, bucket: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    # A byte-order mark, a quoted name with a line break, a blank name, and more rows than one read.
    (landing / "orders" / "o.csv").write_bytes(
        b'\xef\xbb\xbfOrder_ID,"cust\nomer", ,Total\n' + b"o1,c1,x,1.5\n" * 20_000)
    location = upload_folder(aws, landing, f"s3://{bucket}/landing")
    (local,) = scan_landing(landing)
    (remote,) = scan_landing(location, boto3_session=aws)
    assert csv_header(remote) == csv_header(local) == ["Order_ID", "cust\nomer", "_c2", "Total"]

    (landing / "orders" / "o.csv").write_bytes(b"order_id,t\xe9l\n1,2\n")  # Latin-1, not UTF-8
    upload_folder(aws, landing, location)
    (remote,) = scan_landing(location, boto3_session=aws)
    with pytest.raises(LandingError, match="landing file orders/o.csv is not utf-8 text"):
        csv_header(remote)


def test_pii_key_fingerprint_is_kept_in_the_s3_lake(aws, bucket: str, s3_lake: Lake,  # type: ignore[no-untyped-def]
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_PII_KEY", "first-key")
    assert resolve_pii_key(s3_lake, Settings()) == b"first-key"
    assert _keys(aws, bucket) == ["lake/_system/pii_key.fingerprint"]
    fingerprint = s3_lake.read_system("pii_key.fingerprint")
    assert fingerprint and b"first-key" not in fingerprint
    assert resolve_pii_key(Lake(s3_lake.location, boto3_session=aws), Settings()) == b"first-key"

    monkeypatch.setenv("RFMLAKE_PII_KEY", "other-key")
    with pytest.raises(ConfigError, match=rf"differs from the one the lake at {s3_lake.location} was built with") as error:
        resolve_pii_key(s3_lake, Settings())
    assert "pii.key" not in str(error.value)  # no key file to point at on S3
    assert s3_lake.read_system("pii_key.fingerprint") == fingerprint


def test_no_key_is_generated_for_an_s3_lake(aws, bucket: str, s3_lake: Lake,  # type: ignore[no-untyped-def]
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFMLAKE_PII_KEY")
    with pytest.raises(ConfigError, match=rf"no PII key for the lake at {s3_lake.location}: "
                                          "set environment variable RFMLAKE_PII_KEY"):
        resolve_pii_key(s3_lake, Settings())
    assert _keys(aws, bucket) == []


def test_pii_key_comes_from_secrets_manager_when_the_variable_is_unset(aws, s3_lake: Lake,  # type: ignore[no-untyped-def]
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import rfmlake.settings

    monkeypatch.delenv("RFMLAKE_PII_KEY")
    monkeypatch.setattr(rfmlake.settings, "_SECRETS", {})
    settings = Settings(pii_key_secret="rfmlake/test/pii-key")
    with pytest.raises(ConfigError, match="cannot read Secrets Manager secret 'rfmlake/test/pii-key': "
                                          "ResourceNotFoundException"):
        resolve_pii_key(s3_lake, settings)
    aws.client("secretsmanager").create_secret(Name="rfmlake/test/pii-key", SecretString="secret-from-sm\n")
    key = resolve_pii_key(s3_lake, settings)
    assert key == b"secret-from-sm"
    assert tokenize("a@b.example", key, "email") == tokenize("a@b.example", b"secret-from-sm", "email")
    # the fingerprint now guards the lake: the same key from the variable is accepted, another is not
    monkeypatch.setenv("RFMLAKE_PII_KEY", "secret-from-sm")
    assert resolve_pii_key(s3_lake, Settings()) == key
    monkeypatch.setenv("RFMLAKE_PII_KEY", "another")
    with pytest.raises(ConfigError, match="PII key differs"):
        resolve_pii_key(s3_lake, Settings())


def test_suppression_list_is_read_from_the_s3_lake(s3_lake: Lake) -> None:
    assert load_suppression(s3_lake).empty
    key = resolve_pii_key(s3_lake, Settings())
    ids, emails = [tokenize("c1", key, "user")], [tokenize("a@x.com", key, "email")]
    s3_lake.write_system(json.dumps({"customer_id_tokens": ids, "email_tokens": emails}).encode(),
                         "governance", "suppression.json")
    suppression = load_suppression(s3_lake)
    assert suppression.customer_id_tokens == frozenset(ids) and suppression.email_tokens == frozenset(emails)

    s3_lake.write_system(b"{not json", "governance", "suppression.json")
    with pytest.raises(RfmlakeError, match=rf"suppression list {s3_lake.location}/_system/governance/"
                                           "suppression.json is corrupt"):
        load_suppression(s3_lake)


def test_erase_on_an_empty_s3_location_says_there_is_no_lake(s3_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    # Erasure on S3 itself: tests/functional/governance/test_erasure_on_s3.py.
    from rfmlake.cli.main import main

    assert main(["erase", "--lake", s3_lake.location, "--customer-id", "c1"]) == 1
    err = capsys.readouterr().err
    assert f"no lake at {s3_lake.location}" in err
    assert "Traceback" not in err


def test_glue_landing_job_reports_a_bad_s3_landing_before_spark(bucket: str) -> None:
    # `aws` put the moto endpoint and test credentials in os.environ, which the job inherits.
    result = subprocess.run(
        [sys.executable, str(ROOT / "glue_jobs" / "landing_to_bronze.py"),
         "--landing", f"s3://{bucket}/landing/", "--lake", f"s3://{bucket}/lake"],
        capture_output=True, text=True, env=dict(os.environ), timeout=120, check=False,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.strip() == (
        f"error: landing folder s3://{bucket}/landing does not exist: there are no objects under that prefix")
