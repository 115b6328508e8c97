"""rfmlake.recommend.personalize: exports in Personalize's dataset schemas, one training and batch
cycle whose every request botocore's Stubber validates against the personalize service model (moto
does not serve Personalize), and batch results merged back into gold.product_recommendations."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.stub import Stubber

from recommend_inputs import REGION, RUN, inputs
from rfmlake.recommend import personalize
from rfmlake.recommend.job import recommendations_to_arrow

ACCOUNT = "123456789012"
ARN = f"arn:aws:personalize:{REGION}:{ACCOUNT}"
RESOURCES = personalize.PersonalizeResources(
    dataset_arns={kind: f"{ARN}:dataset/rfmlake-recommendations/{kind.upper()}" for kind in personalize.DATASET_TYPES},
    solution_arn=f"{ARN}:solution/rfmlake-recommendations",
    role_arn=f"arn:aws:iam::{ACCOUNT}:role/rfmlake-personalize", exchange_uri="s3://rfmlake-personalize-x/exchange",
)


def client():
    return boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION).client("personalize")


def test_exports_match_the_schemas_and_the_batch_input(tmp_path: Path) -> None:
    export = personalize.export_datasets(inputs(), str(tmp_path / "exchange"), RUN)
    base = tmp_path / "exchange" / "runs" / RUN
    assert export.rows == {"Interactions": 3, "Items": 3, "Users": 3} and export.batch_users == 3
    for kind, schema in personalize.SCHEMAS.items():
        frame = pd.read_csv(base / kind.lower() / f"{kind.lower()}.csv", dtype=str, keep_default_na=False)
        assert list(frame.columns) == [f["name"] for f in schema["fields"]]
    interactions = pd.read_csv(base / "interactions" / "interactions.csv")
    assert interactions["TIMESTAMP"].tolist()[0] == int(datetime(2026, 1, 1, 10, tzinfo=UTC).timestamp())
    users = pd.read_csv(base / "users" / "users.csv", keep_default_na=False)
    assert users.to_dict("records")[2] == {"USER_ID": "C3", "RFM_SEGMENT": ""}  # no segment: empty, not 'nan'
    lines = (base / "batch" / "users.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"userId": "C1"}, {"userId": "C2"}, {"userId": "C3"}]
    assert json.loads((base / "ready.json").read_text())["run_id"] == RUN


def test_schemas_are_valid_avro_for_personalize() -> None:
    for kind, schema in personalize.SCHEMAS.items():
        assert schema["type"] == "record" and schema["name"] == kind and schema["version"] == "1.0"
        names = [f["name"] for f in schema["fields"]]
        assert len(names) == len(set(names))
    assert {"USER_ID", "ITEM_ID", "TIMESTAMP"} <= {f["name"] for f in personalize.SCHEMAS["Interactions"]["fields"]}


def _describe(stubber: Stubber, operation: str, key: str, arn_key: str, arn: str, statuses: list[str]) -> None:
    for status in statuses:
        stubber.add_response(operation, {key: {arn_key: arn, "status": status}}, {arn_key: arn})


def test_one_cycle_imports_trains_and_runs_the_batch_job() -> None:
    personalize_client = client()
    sleeps: list[float] = []
    base = personalize.run_prefix(RESOURCES.exchange_uri, RUN)
    with Stubber(personalize_client) as stubber:
        for kind in personalize.DATASET_TYPES:
            lower = kind.lower()
            stubber.add_response("create_dataset_import_job", {"datasetImportJobArn": f"{ARN}:dataset-import-job/{lower}"},
                                 {"jobName": f"rfmlake-import-{lower}-{RUN}", "datasetArn": RESOURCES.dataset_arns[kind],
                                  "dataSource": {"dataLocation": f"{base}/{lower}/"}, "roleArn": RESOURCES.role_arn,
                                  "importMode": "FULL"})
        _describe(stubber, "describe_dataset_import_job", "datasetImportJob", "datasetImportJobArn",
                  f"{ARN}:dataset-import-job/interactions", ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"])
        for lower in ("items", "users"):
            _describe(stubber, "describe_dataset_import_job", "datasetImportJob", "datasetImportJobArn",
                      f"{ARN}:dataset-import-job/{lower}", ["ACTIVE"])
        version = f"{ARN}:solution/rfmlake-recommendations/abc123"
        stubber.add_response("create_solution_version", {"solutionVersionArn": version},
                             {"solutionArn": RESOURCES.solution_arn, "trainingMode": "FULL"})
        _describe(stubber, "describe_solution_version", "solutionVersion", "solutionVersionArn", version,
                  ["CREATE IN_PROGRESS", "ACTIVE"])
        batch = f"{ARN}:batch-inference-job/rfmlake-batch-{RUN}"
        stubber.add_response("create_batch_inference_job", {"batchInferenceJobArn": batch}, {
            "jobName": f"rfmlake-batch-{RUN}", "solutionVersionArn": version, "numResults": 10,
            "jobInput": {"s3DataSource": {"path": f"{base}/batch/users.jsonl"}},
            "jobOutput": {"s3DataDestination": {"path": f"{RESOURCES.exchange_uri}/output/{RUN}/"}},
            "roleArn": RESOURCES.role_arn})
        _describe(stubber, "describe_batch_inference_job", "batchInferenceJob", "batchInferenceJobArn", batch,
                  ["CREATE PENDING", "ACTIVE"])
        assert personalize.run_cycle(RESOURCES, RUN, client=personalize_client, poll_seconds=30,
                                     sleep=sleeps.append) == batch
        stubber.assert_no_pending_responses()
    assert sleeps == [30] * 4


def test_a_failed_import_stops_the_cycle_with_its_reason() -> None:
    personalize_client = client()
    with Stubber(personalize_client) as stubber:
        for kind in personalize.DATASET_TYPES:
            stubber.add_response("create_dataset_import_job",
                                 {"datasetImportJobArn": f"{ARN}:dataset-import-job/{kind.lower()}"})
        stubber.add_response("describe_dataset_import_job", {"datasetImportJob": {
            "status": "CREATE FAILED", "failureReason": "Input CSV is missing column EVENT_TYPE"}})
        with pytest.raises(personalize.PersonalizeError, match="missing column EVENT_TYPE"):
            personalize.run_cycle(RESOURCES, RUN, client=personalize_client, sleep=lambda s: None)


def test_the_newest_finished_batch_job_of_the_solution_is_found() -> None:
    personalize_client = client()
    old, new = f"{ARN}:batch-inference-job/old", f"{ARN}:batch-inference-job/new"
    with Stubber(personalize_client) as stubber:
        stubber.add_response("list_solution_versions", {"solutionVersions": [
            {"solutionVersionArn": f"{ARN}:solution/s/v1"}, {"solutionVersionArn": f"{ARN}:solution/s/v2"}]},
            {"solutionArn": RESOURCES.solution_arn, "maxResults": 100})
        stubber.add_response("list_batch_inference_jobs", {"batchInferenceJobs": [
            {"batchInferenceJobArn": old, "status": "ACTIVE", "lastUpdatedDateTime": datetime(2026, 1, 1)}]},
            {"solutionVersionArn": f"{ARN}:solution/s/v1"})
        stubber.add_response("list_batch_inference_jobs", {"batchInferenceJobs": [
            {"batchInferenceJobArn": new, "status": "ACTIVE", "lastUpdatedDateTime": datetime(2026, 2, 1)},
            {"batchInferenceJobArn": f"{ARN}:batch-inference-job/running", "status": "CREATE IN_PROGRESS",
             "lastUpdatedDateTime": datetime(2026, 3, 1)}]},
            {"solutionVersionArn": f"{ARN}:solution/s/v2"})
        stubber.add_response("describe_batch_inference_job", {"batchInferenceJob": {
            "batchInferenceJobArn": new, "jobOutput": {"s3DataDestination": {"path": "s3://b/exchange/output/r2/"}}}},
            {"batchInferenceJobArn": new})
        assert personalize.latest_batch_output(RESOURCES.solution_arn, client=personalize_client) == (
            new, "s3://b/exchange/output/r2/")
    with Stubber(personalize_client) as stubber:
        stubber.add_response("list_solution_versions", {"solutionVersions": []})
        assert personalize.latest_batch_output(RESOURCES.solution_arn, client=personalize_client) is None


def test_batch_results_replace_the_lists_of_the_customers_they_cover(tmp_path: Path) -> None:
    out = tmp_path / "output" / RUN
    out.mkdir(parents=True)
    (out / "users.jsonl.out").write_text("\n".join(json.dumps(r) for r in [
        {"input": {"userId": "C1"}, "output": {"recommendedItems": ["P3", "P2", "P1"], "scores": [0.5, 0.3, 0.2]},
         "error": None},
        {"input": {"userId": "C2"}, "output": None, "error": "user not found"},
        {"input": {"userId": "C9"}, "output": {"recommendedItems": ["P1"]}, "error": None},  # no scores
    ]) + "\n")
    batch = personalize.read_batch_output(str(tmp_path / "output"))
    assert batch[["customer_id", "rank", "product_id"]].values.tolist() == [["C1", 1, "P3"], ["C1", 2, "P2"],
                                                                            ["C1", 3, "P1"], ["C9", 1, "P1"]]
    assert batch["score"].tolist()[:3] == [0.5, 0.3, 0.2] and pd.isna(batch["score"].tolist()[3])
    model = recommendations_to_arrow(pd.DataFrame({
        "customer_id": ["C1", "C1", "C2", "C2"], "rank": [1, 2, 1, 2], "product_id": ["P1", "P2", "P2", "P3"],
        "score": [1.0, 0.5, 1.0, 0.5], "source": ["similar_items"] * 4}), inputs().products, date(2026, 3, 1), "rec-1")
    merged = personalize.merge_batch_results(model, batch, inputs().products, date(2026, 3, 1), "personalize:j", n=2)
    rows = merged.select(["customer_id", "rank", "product_id", "product_name", "source", "model_version"]).to_pylist()
    assert [tuple(r.values()) for r in rows] == [
        ("C1", 1, "P3", "Kite", "personalize", "personalize:j"), ("C1", 2, "P2", "Mug", "personalize", "personalize:j"),
        ("C2", 1, "P2", "Mug", "similar_items", "rec-1"), ("C2", 2, "P3", "Kite", "similar_items", "rec-1")]
    assert merged.schema == model.schema  # C9 is not a customer the lake serves: left out


def test_unreadable_output_is_named(tmp_path: Path) -> None:
    with pytest.raises(personalize.PersonalizeError, match="no batch inference output"):
        personalize.read_batch_output(str(tmp_path))
    (tmp_path / "x.out").write_text("not json\n")
    with pytest.raises(personalize.PersonalizeError, match="line 1 is not a batch inference record"):
        personalize.read_batch_output(str(tmp_path))
