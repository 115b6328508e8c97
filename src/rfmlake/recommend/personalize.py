"""The Amazon Personalize adapter: the lake's interactions, items and users in Personalize's dataset
schemas, the requests of one training and batch cycle (dataset imports -> solution version -> batch
inference), and the batch results back into gold.product_recommendations.

On AWS the cycle runs in a Step Functions state machine (infra/rfmlake_infra/personalize.py) whose
task parameters are built by the request functions here; `run_cycle` runs the same requests from
Python (`rfmlake personalize cycle`: a first training, or an account without the state machine).
Clients are handed in or built from an optional boto3 session (awswrangler style); nothing is
created at import time. Personalize has no local emulator: the tests validate every request against
botocore's service model (Stubber).

Exchange layout (settings recommendations.personalize.exchange_uri, an S3 prefix Personalize may read
and write):

    <exchange>/runs/<run_id>/interactions/interactions.csv, items/items.csv, users/users.csv
    <exchange>/runs/<run_id>/batch/users.jsonl          the batch inference input ({"userId": ...})
    <exchange>/runs/<run_id>/ready.json                 written last: starts the cycle on AWS
    <exchange>/output/<run_id>/users.jsonl.out          the batch inference output
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from rfmlake.errors import RfmlakeError
from rfmlake.lake.storage import Storage

if TYPE_CHECKING:
    import boto3

    from rfmlake.recommend.job import LakeInputs

SOURCE_PERSONALIZE = "personalize"
DATASET_TYPES: tuple[str, ...] = ("Interactions", "Items", "Users")
BATCH_INPUT = "batch/users.jsonl"
READY = "ready.json"

_NAMESPACE = "com.amazonaws.personalize.schema"
# Personalize dataset schemas (Avro); the CDK stack creates them from these, so the two cannot differ.
SCHEMAS: dict[str, dict[str, Any]] = {
    "Interactions": {"type": "record", "name": "Interactions", "namespace": _NAMESPACE, "version": "1.0", "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "ITEM_ID", "type": "string"},
        {"name": "TIMESTAMP", "type": "long"},
        {"name": "EVENT_TYPE", "type": "string"},
    ]},
    "Items": {"type": "record", "name": "Items", "namespace": _NAMESPACE, "version": "1.0", "fields": [
        {"name": "ITEM_ID", "type": "string"},
        {"name": "CATEGORY", "type": ["null", "string"], "categorical": True},
        {"name": "BRAND", "type": ["null", "string"], "categorical": True},
    ]},
    "Users": {"type": "record", "name": "Users", "namespace": _NAMESPACE, "version": "1.0", "fields": [
        {"name": "USER_ID", "type": "string"},
        {"name": "RFM_SEGMENT", "type": ["null", "string"], "categorical": True},
    ]},
}


class PersonalizeError(RfmlakeError):
    """A Personalize job failed, or its output cannot be read."""


def _client(boto3_session: boto3.Session | None, client: Any = None) -> Any:
    if client is not None:
        return client
    import boto3 as _boto3

    return (boto3_session or _boto3.Session()).client("personalize")


def run_prefix(exchange_uri: str, run_id: str) -> str:
    return f"{exchange_uri.rstrip('/')}/runs/{run_id}"


def output_prefix(exchange_uri: str, run_id: str) -> str:
    return f"{exchange_uri.rstrip('/')}/output/{run_id}/"


# -- export -----------------------------------------------------------------------------------------
def dataset_frames(inputs: LakeInputs) -> dict[str, pd.DataFrame]:
    """The three datasets as Personalize reads them (CSV columns = the schema's field names)."""
    interactions = inputs.interactions
    frames = {
        "Interactions": pd.DataFrame({
            "USER_ID": interactions["customer_id"].astype(str),
            "ITEM_ID": interactions["product_id"].astype(str),
            "TIMESTAMP": (pd.to_datetime(interactions["occurred_at"]).astype("int64") // 10**9).astype("int64"),
            "EVENT_TYPE": interactions["kind"].astype(str),
        }),
        "Items": pd.DataFrame({
            "ITEM_ID": inputs.products["product_id"].astype(str),
            "CATEGORY": inputs.products["category"],
            "BRAND": inputs.products["brand"],
        }).drop_duplicates("ITEM_ID"),
        "Users": pd.DataFrame({
            "USER_ID": pd.Series(inputs.customers, dtype="object"),
            "RFM_SEGMENT": pd.Series(inputs.customers, dtype="object").map(inputs.segments.to_dict()),
        }),
    }
    for name, frame in frames.items():
        expected = [f["name"] for f in SCHEMAS[name]["fields"]]
        assert list(frame.columns) == expected, (name, list(frame.columns))
    return frames


@dataclass(frozen=True)
class Export:
    run_uri: str
    rows: dict[str, int]
    batch_users: int


def export_datasets(inputs: LakeInputs, exchange_uri: str, run_id: str, *,
                    boto3_session: boto3.Session | None = None) -> Export:
    """Write the datasets and the batch input of this run under the exchange prefix, ready.json last."""
    storage = Storage.for_location(exchange_uri, boto3_session)
    base = run_prefix(exchange_uri, run_id)
    rows: dict[str, int] = {}
    for name, frame in dataset_frames(inputs).items():
        lower = name.lower()
        storage.write_bytes(f"{base}/{lower}/{lower}.csv", frame.to_csv(index=False).encode())
        rows[name] = len(frame)
    lines = "".join(json.dumps({"userId": c}) + "\n" for c in inputs.customers)
    storage.write_bytes(f"{base}/{BATCH_INPUT}", lines.encode())
    storage.write_bytes(f"{base}/{READY}", json.dumps({"run_id": run_id, "rows": rows}).encode())
    return Export(base, rows, len(inputs.customers))


# -- the requests of one cycle (shared with the state machine) ---------------------------------------
def dataset_import_request(dataset_arn: str, data_location: str, role_arn: str, job_name: str) -> dict[str, Any]:
    return {"jobName": job_name, "datasetArn": dataset_arn, "dataSource": {"dataLocation": data_location},
            "roleArn": role_arn, "importMode": "FULL"}


def solution_version_request(solution_arn: str) -> dict[str, Any]:
    return {"solutionArn": solution_arn, "trainingMode": "FULL"}


def batch_inference_request(job_name: str, solution_version_arn: str, input_path: str, output_path: str,
                            role_arn: str, num_results: int) -> dict[str, Any]:
    return {"jobName": job_name, "solutionVersionArn": solution_version_arn, "numResults": num_results,
            "jobInput": {"s3DataSource": {"path": input_path}},
            "jobOutput": {"s3DataDestination": {"path": output_path}}, "roleArn": role_arn}


@dataclass(frozen=True)
class PersonalizeResources:
    """What the CDK stack created (its outputs) and what a cycle needs."""

    dataset_arns: dict[str, str]   # dataset type -> ARN
    solution_arn: str
    role_arn: str                  # the role Personalize assumes to read and write the exchange prefix
    exchange_uri: str
    num_results: int = 10


def job_name(kind: str, run_id: str) -> str:
    """Personalize job names: 1..63 of [a-zA-Z0-9_-]; run ids are `<UTC stamp>-<6 hex>`."""
    name = f"rfmlake-{kind}-{run_id}".replace(":", "-")[:63]
    return name


def _wait(describe: Callable[[], dict[str, Any]], what: str, poll_seconds: float, timeout_seconds: float,
          sleep: Callable[[float], None]) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_seconds
    while True:
        found = describe()
        status = found.get("status", "")
        if status == "ACTIVE":
            return found
        if "FAILED" in status:
            raise PersonalizeError(f"{what} failed: {found.get('failureReason', status)}")
        if time.monotonic() > deadline:
            raise PersonalizeError(f"{what} is still {status or 'unknown'} after {timeout_seconds:.0f} s")
        sleep(poll_seconds)


def run_cycle(resources: PersonalizeResources, run_id: str, *, client: Any = None,
              boto3_session: boto3.Session | None = None, poll_seconds: float = 60.0,
              timeout_seconds: float = 6 * 3600.0, sleep: Callable[[float], None] = time.sleep) -> str:
    """Import the run's datasets, train a solution version, start the batch inference job and wait
    for it; returns the batch job's ARN (its output is under output_prefix(exchange, run_id))."""
    personalize = _client(boto3_session, client)
    base = run_prefix(resources.exchange_uri, run_id)
    imports = {}
    for kind in DATASET_TYPES:
        lower = kind.lower()
        request = dataset_import_request(resources.dataset_arns[kind], f"{base}/{lower}/", resources.role_arn,
                                         job_name(f"import-{lower}", run_id))
        imports[kind] = personalize.create_dataset_import_job(**request)["datasetImportJobArn"]
    for kind, arn in imports.items():
        _wait(lambda arn=arn: personalize.describe_dataset_import_job(datasetImportJobArn=arn)["datasetImportJob"],
              f"the {kind.lower()} import {arn}", poll_seconds, timeout_seconds, sleep)
    version = personalize.create_solution_version(**solution_version_request(resources.solution_arn))[
        "solutionVersionArn"]
    _wait(lambda: personalize.describe_solution_version(solutionVersionArn=version)["solutionVersion"],
          f"solution version {version}", poll_seconds, timeout_seconds, sleep)
    batch = personalize.create_batch_inference_job(**batch_inference_request(
        job_name("batch", run_id), version, f"{base}/{BATCH_INPUT}", output_prefix(resources.exchange_uri, run_id),
        resources.role_arn, resources.num_results))["batchInferenceJobArn"]
    _wait(lambda: personalize.describe_batch_inference_job(batchInferenceJobArn=batch)["batchInferenceJob"],
          f"batch inference job {batch}", poll_seconds, timeout_seconds, sleep)
    return batch


# -- results back into the lake -----------------------------------------------------------------------
def latest_batch_output(solution_arn: str, *, client: Any = None,
                        boto3_session: boto3.Session | None = None) -> tuple[str, str] | None:
    """(job ARN, output S3 prefix) of the newest finished batch inference job of the solution's
    versions; None when there is none yet."""
    personalize = _client(boto3_session, client)
    versions = personalize.list_solution_versions(solutionArn=solution_arn, maxResults=100)["solutionVersions"]
    jobs: list[dict[str, Any]] = []
    for version in versions:
        pages = personalize.get_paginator("list_batch_inference_jobs").paginate(
            solutionVersionArn=version["solutionVersionArn"])
        for page in pages:
            jobs.extend(j for j in page["batchInferenceJobs"] if j.get("status") == "ACTIVE")
    if not jobs:
        return None
    newest = max(jobs, key=lambda j: (j["lastUpdatedDateTime"], j["batchInferenceJobArn"]))
    found = personalize.describe_batch_inference_job(batchInferenceJobArn=newest["batchInferenceJobArn"])
    path = found["batchInferenceJob"]["jobOutput"]["s3DataDestination"]["path"]
    return newest["batchInferenceJobArn"], path


def read_batch_output(output_uri: str, *, boto3_session: boto3.Session | None = None) -> pd.DataFrame:
    """The output files (JSON lines {"input": {"userId"}, "output": {"recommendedItems", "scores"},
    "error"}) as customer_id, rank, product_id, score, source rows; lines with an error are skipped."""
    storage = Storage.for_location(output_uri, boto3_session)
    files = [f for f in storage.files(output_uri, recursive=True) if f.endswith(".out")]
    if not files:
        raise PersonalizeError(f"no batch inference output (*.out) under {output_uri}")
    rows: list[tuple[str, int, str, float | None]] = []
    for uri in sorted(files):
        for number, line in enumerate(io.StringIO((storage.read_bytes(uri) or b"").decode()), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                user = str(record["input"]["userId"])
                output = record.get("output") or {}
                items = output.get("recommendedItems") or []
                scores = output.get("scores") or [None] * len(items)
            except (ValueError, KeyError, TypeError):
                raise PersonalizeError(f"{uri} line {number} is not a batch inference record") from None
            if record.get("error"):
                continue
            rows.extend((user, rank, str(item), float(score) if score is not None else None)
                        for rank, (item, score) in enumerate(zip(items, scores, strict=False), start=1))
    return pd.DataFrame({
        "customer_id": pd.Series([r[0] for r in rows], dtype="object"),
        "rank": pd.Series([r[1] for r in rows], dtype="int16"),
        "product_id": pd.Series([r[2] for r in rows], dtype="object"),
        "score": pd.Series([r[3] for r in rows], dtype="float64"),
        "source": pd.Series([SOURCE_PERSONALIZE] * len(rows), dtype="object"),
    })


def merge_batch_results(model_table: pa.Table, batch: pd.DataFrame, products: pd.DataFrame, as_of: date | None,
                        version: str, n: int) -> pa.Table:
    """gold.product_recommendations with Personalize's lists for the customers it covered (best n)
    and the model's for everyone else (the cold start, customers new since the batch)."""
    import pyarrow.compute as pc

    from rfmlake.recommend.job import recommendations_to_arrow

    served = set(model_table.column("customer_id").to_pylist())
    batch = batch[batch["customer_id"].isin(served) & (batch["rank"] <= n)]
    covered = pa.array(sorted(batch["customer_id"].unique()), pa.string())
    kept = model_table.filter(pc.invert(pc.is_in(model_table.column("customer_id"), value_set=covered)))
    personal = recommendations_to_arrow(batch, products, as_of, version)
    return pa.concat_tables([kept, personal]).sort_by([("customer_id", "ascending"), ("rank", "ascending")])
