"""Erasure on a lake on S3 (moto server: S3 with versioned buckets, Glue), built as the AWS runtime
builds it: a local run's upstream tables as Glue and dbt-athena leave them (one gold table's data
under gold/_dbt/, as dbt-athena writes it), then the one-process stages through run_stage, the
profile store in OpenSearch (the test double served over HTTP), Athena query results in their own
bucket. After `rfmlake erase`, no version of any object in either bucket holds the person's id,
email, phone or name, and everyone else is untouched."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from aws_lake import PREFIX, REGION, new_bucket  # type: ignore[import-not-found]
from erasure_scan import pick_person, s3_versions_mentioning  # type: ignore[import-not-found]
from fake_opensearch import FakeOpenSearch, serve_opensearch  # type: ignore[import-not-found]
from rfmlake.cli.main import main
from rfmlake.lake import Lake, open_lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

PII_KEY = "an erasure test key shared by the local run and the lake on S3"
PYTHON_BUILT = {"gold.customer_rfm", "gold.segment_membership_history", "gold.segment_migration",
                "gold.customer_value", "gold.product_recommendations", "gold.customer_profile"}
ONE_PROCESS_STAGES = ["segmentation", "customer_value", "recommendations", "profiles", "activate"]
DBT_TABLE = "dim_customers"  # left where dbt-athena writes its tables' data


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, spark) -> Iterator[tuple[Path, Lake]]:  # noqa: ARG001
    from rfmlake.generate import generate_landing

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RFMLAKE_PII_KEY", PII_KEY)  # an S3 lake's key comes from the environment
        root = tmp_path_factory.mktemp("erasure_s3")
        generate_landing(root / "landing", order_lines=2000, seed=23, bad_rows=True)
        lake = Lake(root / "lake")
        summary = run_pipeline(RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings()))
        assert all(s.status == "succeeded" for s in summary.stages), [(s.name, s.status) for s in summary.stages]
        yield root, lake


def _as_dbt_athena_leaves_it(aws: Any, remote: Lake, bucket: str) -> None:
    """gold.dim_customers as dbt-athena builds it: data files without a suffix under gold/_dbt/, the
    Glue table's location pointing there, no lake version or pointer."""
    from rfmlake.lake.storage import Storage

    ref = remote.require("gold", DBT_TABLE)
    folder = f"{remote.location}/gold/_dbt/{DBT_TABLE}/5f0c2a"
    for i, uri in enumerate(remote.files(ref)):
        remote.storage.copy_file(uri, f"{folder}/20261101_{i:05d}_0", remote.storage)
    with remote.storage.open_input(remote.files(ref)[0]) as handle:
        import pyarrow.parquet as pq

        schema = pq.read_schema(handle)
    remote.storage.delete_dir(Storage.join(remote.table_uri("gold", DBT_TABLE), "versions"))
    remote.storage.delete_file(Storage.join(remote.table_uri("gold", DBT_TABLE), "_current"))
    remote.catalog.set_location("gold", DBT_TABLE, folder, schema, "dbt")  # type: ignore[union-attr]
    assert remote.require("gold", DBT_TABLE).uri == folder and bucket in folder


def test_erasure_on_s3_leaves_no_version_of_any_object_holding_the_person(
        local_run: tuple[Path, Lake], aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from rfmlake.lake.workspace import copy_tables
    from rfmlake.pipeline.remote import run_stage
    from rfmlake.profiles.indexer import index_version
    from rfmlake.profiles.opensearch import OpenSearchProfileStore, client_for

    root, lake = local_run
    monkeypatch.setenv("RFMLAKE_PII_KEY", PII_KEY)
    person = pick_person(connect(lake), root / "landing")
    customer_id, email, needles = str(person["customer_id"]), str(person["email"]), list(person["needles"])  # type: ignore[call-overload]

    # The lake on S3, versioned as infra/ deploys it, built by the stages the AWS runtime runs.
    s3 = aws.client("s3")
    bucket, results_bucket = new_bucket(aws), new_bucket(aws, glue_prefix=None)
    for name in (bucket, results_bucket):
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    config = tmp_path / "aws.yaml"
    config.write_text(f"prefix: {PREFIX}\n")
    remote_uri = f"s3://{bucket}/lake"
    remote = open_lake(remote_uri, load_settings(config), boto3_session=aws)
    copy_tables(lake, remote, [r.qualified_name for r in lake.tables() if r.qualified_name not in PYTHON_BUILT])
    remote.write_system((lake.system_dir / "pii_key.fingerprint").read_bytes(), "pii_key.fingerprint")
    for stage in ONE_PROCESS_STAGES:
        run_stage(stage, lake=remote_uri, config=str(config), run_id="aws-run")
    _as_dbt_athena_leaves_it(aws, remote, bucket)
    # Athena's query results: whatever analysts queried, e.g. their customers with contact details.
    con = connect(lake)
    result = con.execute("SELECT * FROM bronze.customers").fetch_arrow_table().to_pandas().to_csv(index=False)
    s3.put_object(Bucket=results_bucket, Key="results/3f1e-query.csv", Body=result.encode())
    s3.put_object(Bucket=results_bucket, Key="results/3f1e-query.csv", Body=b"overwritten\n")  # the old bytes stay
    # An upload a killed writer never completed holds their bytes too.
    upload = s3.create_multipart_upload(Bucket=bucket, Key="lake/silver/customers/versions/x/part-0.parquet")
    s3.upload_part(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"], PartNumber=1, Body=result.encode())

    # The profile store in OpenSearch, loaded by the indexer from gold.customer_profile.
    fake = FakeOpenSearch()
    with serve_opensearch(fake) as endpoint:
        store = OpenSearchProfileStore(client_for(endpoint, REGION, aws))
        index_version(duckdb.connect(), lake.require("gold", "customer_profile").uri, store)
        assert store.get(customer_id) is not None
        profiles_before = {d["customer_id"] for docs in fake.indices.values() for d in docs.values()}

        rfm_before = remote.read_arrow(remote.require("gold", "customer_rfm")).to_pylist()
        assert any(r["customer_id"] == customer_id for r in rfm_before)
        found = s3_versions_mentioning(s3, bucket, needles)
        assert any("/_dbt/" in hit for hit in found) and any("/bronze/" in hit for hit in found)
        assert s3_versions_mentioning(s3, results_bucket, needles)

        monkeypatch.setenv("RFMLAKE_OPENSEARCH_ENDPOINT", endpoint)
        monkeypatch.setenv("RFMLAKE_ATHENA_S3_STAGING_DIR", f"s3://{results_bucket}/results/")
        args = ["erase", "--lake", remote_uri, "--config", str(config)]
        assert main([*args, "--customer-id", customer_id, "--email", email]) == 0
        out = capsys.readouterr().out
        assert "noncurrent_object_versions_deleted" in out and "not set" not in out

        # No version of any object in either bucket holds them; nothing is left half uploaded.
        assert s3_versions_mentioning(s3, bucket, needles) == []
        assert s3_versions_mentioning(s3, results_bucket, needles) == []
        assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
        # Only the lease's own traces are left (given back after the purge); they hold no data.
        listing = s3.list_object_versions(Bucket=bucket)
        left = [v["Key"] for v in listing.get("Versions", []) if not v["IsLatest"]] + \
            [m["Key"] for m in listing.get("DeleteMarkers", [])]
        assert set(left) <= {"lake/_system/run.lock"}
        # OpenSearch: a new index without them is the active one; every older index is gone.
        assert store.get(customer_id) is None
        assert len(fake.indices) == 1
        profiles_after = {d["customer_id"] for docs in fake.indices.values() for d in docs.values()}
        assert profiles_after == profiles_before - {customer_id}
        # Glue keeps only each table's current version.
        glue = aws.client("glue")
        for zone in ("bronze", "silver", "gold"):
            for table in glue.get_tables(DatabaseName=f"{PREFIX}_{zone}")["TableList"]:
                versions = glue.get_table_versions(DatabaseName=f"{PREFIX}_{zone}", TableName=table["Name"])
                assert len(versions["TableVersions"]) == 1, table["Name"]

    # Everyone else is untouched; the lake still reads (the dbt table now a lake version).
    rfm_after = remote.read_arrow(remote.require("gold", "customer_rfm")).to_pylist()
    assert sorted(rfm_after, key=str) == sorted([r for r in rfm_before if r["customer_id"] != customer_id], key=str)
    assert remote.require("gold", DBT_TABLE).uri.startswith(remote.table_uri("gold", DBT_TABLE) + "/versions/")
    audit = [json.loads(line) for line in (remote.read_system("governance", "erasure_audit.jsonl") or b"").splitlines()]
    assert len(audit) == 1 and customer_id not in json.dumps(audit) and audit[0]["aws_removed"]["glue_table_versions_deleted"]
    assert audit[0]["downstream_removed"]["profile_store_opensearch"] == 1
    assert not remote.storage.exists(remote.system_uri("run.lock"))  # the lease is given back

    # An unknown id is refused, and changes nothing; --allow-missing puts it on the suppression list.
    monkeypatch.delenv("RFMLAKE_OPENSEARCH_ENDPOINT")
    suppression = remote.read_system("governance", "suppression.json")
    assert main([*args, "--customer-id", "C-nobody-42"]) == 1
    assert "is in no table of the lake" in capsys.readouterr().err
    assert remote.read_system("governance", "suppression.json") == suppression
    # A results location that holds the lake (it is emptied entirely) is refused before anything moves.
    lake_bucket = remote.location.removeprefix("s3://").split("/")[0]
    assert main([*args, "--customer-id", "C-nobody-42", "--allow-missing",
                 "--athena-results", f"s3://{lake_bucket}"]) == 1
    assert "overlaps" in capsys.readouterr().err
    assert remote.read_system("governance", "suppression.json") == suppression
    assert main([*args, "--customer-id", "C-nobody-42", "--allow-missing"]) == 0
    assert remote.read_system("governance", "suppression.json") != suppression


def test_erasure_on_s3_waits_for_the_lake_lock(aws: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A stage, a sync or an erasure holding the lake's S3 lease keeps an erasure out, and the
    reverse; an expired lease (its holder died) is taken over."""
    from rfmlake.errors import PipelineError
    from rfmlake.lake.locks import lake_lock

    monkeypatch.setenv("RFMLAKE_PII_KEY", PII_KEY)
    config = tmp_path / "aws.yaml"
    config.write_text(f"prefix: {PREFIX}\n")
    remote_uri = f"s3://{new_bucket(aws)}/lake"
    remote = open_lake(remote_uri, load_settings(config), boto3_session=aws)
    remote.write_system(b"{}", "governance", "suppression.json")
    with lake_lock(remote, PipelineError("a stage holds it")):
        assert main(["erase", "--lake", remote_uri, "--config", str(config), "--customer-id", "c1",
                     "--allow-missing"]) == 1
        err = capsys.readouterr().err
        assert "is using the lake" in err and "run.lock" in err
        with pytest.raises(PipelineError, match="a second stage"), lake_lock(remote, PipelineError("a second stage")):
            pass
    # a holder whose lease has run out is replaced
    with lake_lock(remote, PipelineError("held"), lease_seconds=-1), lake_lock(remote, PipelineError("taken over")):
        assert json.loads(remote.read_system("run.lock") or b"{}")["holder"].endswith(str(os.getpid()))


def test_a_stage_of_the_same_run_takes_over_its_runs_lease(aws: Any, tmp_path: Path) -> None:
    """A stage attempt killed by its timeout leaves the run's lease behind; the state machine's retry,
    or the run's next stage, runs under the same run id and takes it over at once. Another run, or an
    erasure (no run id), still finds the lake busy, and the stage's end gives the lease back."""
    from rfmlake.errors import PipelineError
    from rfmlake.lake.locks import lake_lock

    remote = open_lake(f"s3://{new_bucket(aws)}/lake", load_settings(), boto3_session=aws)
    dead = lake_lock(remote, PipelineError("attempt 1"), owner="run-A")
    dead.__enter__()  # the killed attempt: never given back
    with pytest.raises(PipelineError, match="another run"), lake_lock(remote, PipelineError("another run"),
                                                                      owner="run-B"):
        pass
    with pytest.raises(PipelineError, match="an erasure"), lake_lock(remote, PipelineError("an erasure")):
        pass
    with lake_lock(remote, PipelineError("the retry"), owner="run-A"):
        lease = json.loads(remote.read_system("run.lock") or b"{}")
        assert lease["owner"] == "run-A"
        with pytest.raises(PipelineError, match="another run"), lake_lock(remote, PipelineError("another run"),
                                                                          owner="run-B"):
            pass
    assert not remote.storage.exists(remote.system_uri("run.lock"))
    with lake_lock(remote, PipelineError("run B"), owner="run-B"):
        dead.__exit__(None, None, None)  # the dead attempt's late cleanup leaves another holder's lease
        assert json.loads(remote.read_system("run.lock") or b"{}")["owner"] == "run-B"
