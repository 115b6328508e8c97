"""The SageMaker processing jobs of the synthesized app, run here as the state machine starts them:
each Task's ContainerEntrypoint and ContainerArguments, Environment and ProcessingInputs, with the container's
/opt/ml/processing mapped to a folder holding the inputs the job would get (models/segmentation/ and
the settings.yaml the compute stack uploads), `python3` = this venv (what the image installs), the
run id the state machine passes, and the lake bucket = a moto server bucket with the Glue databases
of the catalog stack. Proves the deployed command runs the stage and commits its tables on S3, and (the
IAM check, rfmlake.deploy.iam_check) that every AWS call of every job, in every environment of config/,
is allowed by the SageMaker role."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aws_calls import assert_role_allows, denials_without, recorded
from infra_synth import REPO, Synth
from rfmlake.lake import Lake, open_lake
from rfmlake.lake.workspace import copy_tables
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.settings import load_settings

PROCESSING = "/opt/ml/processing"
STATE_MACHINE_RUN_ID = "landing-2026-12-01-abc123"


def stage_input(synth: Synth, processing: dict[str, Any], work: Path) -> None:
    """Put each ProcessingInput where the job would find it (they all come from the artifacts bucket)."""
    compute = synth.platform.compute
    artifacts = f"s3://{compute.storage.artifacts.bucket_name}/"
    sources = {"models/segmentation/": REPO / "models" / "segmentation"}
    for item in processing["ProcessingInputs"]:
        uri, local = item["S3Input"]["S3Uri"], item["S3Input"]["LocalPath"]
        assert uri.startswith(artifacts), uri  # no lake data comes in as an input: the stage reads the lake
        target = work / local.removeprefix(PROCESSING + "/")
        key = uri.removeprefix(artifacts)
        if key == "config/":
            target.mkdir(parents=True)
            (target / "settings.yaml").write_text(compute.settings_text)
        else:
            shutil.copytree(sources[key], target, ignore=shutil.ignore_patterns("__pycache__"))


def run_job(synth: Synth, stage: str, work: Path, lake_uri: str,
            run_id: str = STATE_MACHINE_RUN_ID) -> subprocess.CompletedProcess[str]:
    compute = synth.platform.compute
    processing = compute.stage_resources[stage]["processing"]
    task = synth.platform.orchestration.definition["States"][stage]
    assert task["Resource"] == "arn:aws:states:::sagemaker:createProcessingJob.sync"
    assert task["Parameters"]["AppSpecification"] == processing["AppSpecification"]
    stage_input(synth, processing, work)
    environment = dict(task["Parameters"]["Environment"])
    assert environment.pop("RFMLAKE_RUN_ID.$") == "$$.Execution.Name"

    def local(value: str) -> str:
        return value.replace(compute.lake_uri, lake_uri + "/").replace(PROCESSING, str(work))

    app = processing["AppSpecification"]
    command = [local(part) for part in (*app["ContainerEntrypoint"], *app["ContainerArguments"])]
    assert command[0] == "python3"  # the image's Python, with the package installed
    env = {**{k: local(v) for k, v in environment.items()}, "RFMLAKE_RUN_ID": run_id}
    return subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env}, cwd=work)


# What the processing jobs build; everything else is what Glue, the stage function and dbt-athena leave
# on S3 before them.
JOB_BUILT = {"gold.customer_rfm", "gold.segment_membership_history", "gold.segment_migration",
             "gold.engagement_segment_history", "gold.customer_value", "gold.product_recommendations"}


@pytest.mark.slow
def test_the_deployed_processing_jobs_commit_their_stages_on_s3(synth_env: Synth, built_lake: Lake, aws,
                                                                 tmp_path: Path) -> None:
    """Every processing job of the state machine, in every environment, against the lake as the stages
    before them leave it on S3; every call the jobs made is allowed by the SageMaker role."""
    environment = synth_env.platform.environment
    jobs = [stage.name for stage in PIPELINE if stage.runtime == "segmentation"]
    assert jobs == ["segmentation", "customer_value", "recommendations"]
    bucket = f"lake-{tmp_path.name[-8:].lower().replace('_', '-')}"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for zone in ("bronze", "silver", "gold"):  # what the catalog stack creates
        aws.client("glue").create_database(DatabaseInput={"Name": f"{environment.prefix}_{zone}"})
    lake_uri = f"s3://{bucket}"
    settings = load_settings(overrides={"prefix": environment.prefix})
    lake = open_lake(lake_uri, settings, boto3_session=aws)
    copy_tables(built_lake, lake, [r.qualified_name for r in built_lake.tables() if r.qualified_name not in JOB_BUILT])

    committed: dict[str, set[str]] = {}
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:  # the jobs' own calls, from their processes
        for job in jobs:
            result = run_job(synth_env, job, tmp_path / job, lake_uri)
            assert result.returncode == 0, result.stderr[-3000:]
            if job == "segmentation":
                committed[job] = set(json.loads(result.stdout)["committed"])
    assert committed["segmentation"] == {"gold.customer_rfm", "gold.segment_membership_history",
                                         "gold.segment_migration", "gold.engagement_segment_history"}
    rfm = lake.read_arrow(lake.require("gold", "customer_rfm"))
    assert rfm.num_rows == lake.count_rows(lake.require("gold", "customer_rfm_features")) > 0
    assert lake.count_rows(lake.require("gold", "customer_value")) == rfm.num_rows
    assert lake.count_rows(lake.require("gold", "product_recommendations")) > 0
    glue = aws.client("glue").get_table(DatabaseName=f"{environment.prefix}_gold", Name="customer_value")["Table"]
    assert glue["StorageDescriptor"]["Location"].rstrip("/") == lake.require("gold", "customer_value").uri
    state = [uri.split("/_system/")[1] for uri in lake.storage.walk(lake.system_uri())]
    assert any(s.startswith("models/segmentation/") for s in state) and any(s.startswith("models/value/") for s in state)
    # the recommendations' stored fit and the served people's inputs, for the next run between fits
    assert any(s.startswith("models/recommendations/") and s.endswith("/model.npz") for s in state), state
    assert any(s.startswith("models/recommendations/") and "/people/" in s for s in state), state
    # the run id the state machine passed names the run's reports
    assert any(s.startswith(f"runs/{STATE_MACHINE_RUN_ID}/") for s in state)
    assert not list((tmp_path / "segmentation").glob("rfmlake-workspace-*"))  # scratch cleaned up

    # The next day's run, once the state machine wrote this one's summary (the summary step itself:
    # test_run_summary_on_aws.py): recommendations score with the stored fit and carry the lists of
    # the people whose inputs did not change, from the S3 lake.
    lake.write_system(json.dumps({"run_id": STATE_MACHINE_RUN_ID, "started_at": "2026-12-01T03:00:00+00:00",
                                  "stages": [{"name": job, "status": "succeeded"} for job in jobs]}).encode(),
                      "runs", STATE_MACHINE_RUN_ID, "summary.json")
    first = json.loads(lake.read_system("runs", STATE_MACHINE_RUN_ID, "recommendations_report.json") or b"{}")
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as more:
        result = run_job(synth_env, "recommendations", tmp_path / "again", lake_uri, run_id="landing-2026-12-02-def456")
    assert result.returncode == 0, result.stderr[-3000:]
    again = json.loads(lake.read_system("runs", "landing-2026-12-02-def456", "recommendations_report.json") or b"{}")
    assert again["model_from"]["run_id"] == STATE_MACHINE_RUN_ID and again["model_version"] == first["model_version"]
    assert again["customers_scored"] == 0 and again["customers_carried"] == first["customers"] > 0, again
    check_calls(synth_env, requests + more, bucket)


def check_calls(synth: Synth, requests: list[dict[str, Any]], bucket: str) -> None:
    """The IAM check on what the jobs did: every call allowed by the SageMaker role (the workspace
    looks only into the zones the stages read); a fault put back is named."""
    compute = synth.platform.compute
    calls = assert_role_allows(synth, compute, compute.sagemaker_role, requests, source="processing jobs",
                               buckets={bucket: compute.storage.lake})
    assert {"s3:GetObject", "s3:PutObject", "glue:UpdateTable"} <= {c.action for c in calls}
    missing = denials_without(synth, compute, compute.sagemaker_role, calls, {"CatalogWrite"})
    assert missing and all("/SageMakerRole" in m and " may not glue:" in m for m in missing)
