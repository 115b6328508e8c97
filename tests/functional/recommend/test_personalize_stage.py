"""The recommendations stage with Amazon Personalize on (recommendations.personalize): it imports the
newest finished batch inference job's lists in place of the model's for the people they cover and
exports this run's datasets to the exchange prefix (S3 on the moto server); when Personalize cannot be
reached or its output cannot be read, the model's lists stand and the report says why. Moto does not
serve Personalize: its calls go to a botocore Stubber that validates them against the service model.
The lake is a copy of the `run` fixture's (conftest.py), whose table is the model's lists."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.recommend.job import run_recommendations
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

REGION = "eu-west-1"
ARN = f"arn:aws:personalize:{REGION}:123456789012"
SOLUTION = f"{ARN}:solution/rfmlake-recommendations"
VERSION = f"{SOLUTION}/v1"
JOB = f"{ARN}:batch-inference-job/rfmlake-batch-r0"
EXCHANGE = "s3://exchange/p"
OUTPUT = f"{EXCHANGE}/output/r0/"


def _client():
    return boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION).client("personalize")


def _table(lake: Lake) -> list[dict]:
    con = connect(lake, zones=("gold",))
    try:
        return con.execute("select * from gold.product_recommendations order by customer_id, rank"
                           ).fetch_arrow_table().to_pylist()
    finally:
        con.close()


def _stage(run, tmp_path: Path, client) -> tuple[Lake, RunContext, dict]:  # type: ignore[no-untyped-def]
    source, _, _ = run
    shutil.copytree(source.root, tmp_path / "lake")
    lake = Lake(tmp_path / "lake")
    settings = load_settings(overrides={"recommendations.personalize": {
        "enabled": True, "exchange_uri": EXCHANGE, "solution_arn": SOLUTION}})
    ctx = RunContext(landing_dir=source.root.parent / "landing", lake=lake, settings=settings)
    return lake, ctx, run_recommendations(ctx, personalize_client=client)


def _finished_job(stubber: Stubber) -> None:
    stubber.add_response("list_solution_versions", {"solutionVersions": [{"solutionVersionArn": VERSION}]},
                         {"solutionArn": SOLUTION, "maxResults": 100})
    stubber.add_response("list_batch_inference_jobs", {"batchInferenceJobs": [
        {"batchInferenceJobArn": JOB, "status": "ACTIVE", "lastUpdatedDateTime": datetime(2026, 11, 1, tzinfo=UTC)}]},
        {"solutionVersionArn": VERSION})
    stubber.add_response("describe_batch_inference_job", {"batchInferenceJob": {
        "batchInferenceJobArn": JOB, "jobOutput": {"s3DataDestination": {"path": OUTPUT}}}},
        {"batchInferenceJobArn": JOB})


def test_batch_results_replace_the_lists_they_cover_and_the_run_is_exported(run, tmp_path: Path, aws) -> None:
    model = _table(run[0])
    people = sorted({r["customer_id"] for r in model})
    covered, failed = people[:2], people[2]
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="exchange", CreateBucketConfiguration={"LocationConstraint": REGION})
    lines = [{"input": {"userId": covered[0]}, "output": {"recommendedItems": ["P000005", "P000007"],
                                                          "scores": [0.6, 0.4]}, "error": None},
             {"input": {"userId": covered[1]}, "output": {"recommendedItems": ["P000009"], "scores": [0.9]}},
             {"input": {"userId": failed}, "output": None, "error": "user not found"},
             {"input": {"userId": "not-a-person-here"}, "output": {"recommendedItems": ["P000001"]}}]
    s3.put_object(Bucket="exchange", Key="p/output/r0/users.jsonl.out",
                  Body="".join(json.dumps(line) + "\n" for line in lines).encode())
    client = _client()
    with Stubber(client) as stubber:
        _finished_job(stubber)
        lake, ctx, report = _stage(run, tmp_path, client)
        stubber.assert_no_pending_responses()

    table = _table(lake)
    personal = [(r["customer_id"], r["rank"], r["product_id"], r["score"], r["source"], r["model_version"])
                for r in table if r["customer_id"] in covered]
    assert personal == [(covered[0], 1, "P000005", 0.6, "personalize", "personalize:rfmlake-batch-r0"),
                        (covered[0], 2, "P000007", 0.4, "personalize", "personalize:rfmlake-batch-r0"),
                        (covered[1], 1, "P000009", 0.9, "personalize", "personalize:rfmlake-batch-r0")]
    assert all(r["product_name"] and r["category"] for r in table if r["customer_id"] in covered)
    # everyone else, the person whose line failed among them, keeps the model's list; no one is added
    assert [r for r in table if r["customer_id"] not in covered] == [r for r in model if r["customer_id"] not in covered]
    assert report["personalize"]["imported_job"] == JOB
    assert report["personalize"]["customers"] == 2 and report["personalize"]["batch_users"] == 3  # not the unknown
    assert report["customers_by_source"]["personalize"] == 2

    base = f"p/runs/{ctx.run_id}"
    assert report["personalize"]["exported_to"] == f"{EXCHANGE}/runs/{ctx.run_id}"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="exchange", Prefix=base)["Contents"])
    assert keys == [f"{base}/{k}" for k in ("batch/users.jsonl", "interactions/interactions.csv", "items/items.csv",
                                            "ready.json", "users/users.csv")]
    users = s3.get_object(Bucket="exchange", Key=f"{base}/users/users.csv")["Body"].read().decode().splitlines()
    assert users[0] == "USER_ID,RFM_SEGMENT" and sorted(u.split(",")[0] for u in users[1:]) == people
    assert report["personalize"]["rows"]["Users"] == len(people) == report["customers"]


@pytest.mark.parametrize("failure", ["unreachable", "no_output"])
def test_when_personalize_fails_the_models_lists_stand(run, tmp_path: Path, aws, failure: str) -> None:
    aws.client("s3").create_bucket(Bucket="exchange", CreateBucketConfiguration={"LocationConstraint": REGION})
    client = _client()
    with Stubber(client) as stubber:
        if failure == "unreachable":
            stubber.add_client_error("list_solution_versions", service_error_code="AccessDeniedException",
                                     service_message="not authorized to perform personalize:ListSolutionVersions",
                                     http_status_code=400, expected_params={"solutionArn": SOLUTION, "maxResults": 100})
        else:  # the job finished, but its output is not there
            _finished_job(stubber)
        lake, _, report = _stage(run, tmp_path, client)
        stubber.assert_no_pending_responses()
    assert _table(lake) == _table(run[0])
    assert "personalize" not in report["customers_by_source"]
    expected = "AccessDeniedException" if failure == "unreachable" else f"no batch inference output (*.out) under {OUTPUT}"
    notes = [n for n in report["notes"] if n.startswith("personalize: ")]
    assert len(notes) == 1 and expected in notes[0] and notes[0].endswith("the model's lists stand")
