"""The Glue jobs of the synthesized app, run here as Glue runs them: each entry script (glue_jobs/*.py) with
the job's arguments (--lake, --landing, --config settings.yaml as --extra-files puts it in the working
folder, --metrics cloudwatch), against a moto server holding the buckets under their deployed names, the
catalog stack's Glue databases and the PII key secret. Every AWS call the scripts make is recorded and
evaluated against the Glue role's synthesized policies (the IAM check, rfmlake.deploy.iam_check), in
every environment of config/: the landing scan, the lake's pointers and manifests, the Glue catalog
commits, the PII key (Secrets Manager) and its fingerprint, the suppression list, the run reports and the
quarantine metrics (CloudWatch).

Local pyspark has no S3 connector, so the scripts' Spark engine is replaced by the DuckDB engine reading
and writing the same s3:// paths through httpfs (rfmlake.ingest.engine has both behind one interface):
the data files it touches are the ones Spark would, under the same role. What Spark and Glue do beyond
that (S3A's own requests, the job's script, wheels, TempDir, logs) is declared in test_iam_check.py."""

from __future__ import annotations

import os
import runpy
from pathlib import Path
from typing import Any

import pytest

from aws_calls import assert_role_allows, denials_without, recorded
from aws_lake import upload_folder
from infra_synth import REPO, Synth
from rfmlake.deploy.cfn import Templates
from rfmlake.ingest.engine import DuckEngine
from rfmlake.lake import open_lake
from rfmlake.lake.duckdb_s3 import enable_s3
from rfmlake.settings import load_settings

SCRIPTS = {"ingest_bronze": "landing_to_bronze.py", "conform_silver": "bronze_to_silver.py"}


def s3_duck_engine(*_args: Any, **_kwargs: Any) -> DuckEngine:
    """What the scripts get instead of SparkEngine(get_spark(...)): DuckDB on the same s3:// paths."""
    engine = DuckEngine()
    enable_s3(engine.con)
    return engine


def test_the_glue_jobs_call_only_what_the_glue_role_allows(
        synth_env: Synth, aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rfmlake.generate import generate_landing

    platform = synth_env.platform
    compute, storage, deploy = platform.compute, platform.storage, platform.environment.deploy
    templates = Templates(synth_env.templates, account=deploy.account or "123456789012", region=deploy.region)
    s3 = aws.client("s3")
    buckets = {}
    for construct in (storage.landing, storage.lake):
        name = templates.physical_name(storage.stack_name, storage.get_logical_id(construct.node.default_child))
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": deploy.region})
        buckets[name] = construct
    for zone in ("bronze", "silver", "gold"):
        aws.client("glue").create_database(DatabaseInput={"Name": f"{platform.environment.prefix}_{zone}"})
    generate_landing(tmp_path / "landing", order_lines=400, seed=5, bad_rows=True)
    (tmp_path / "landing" / "_generator_manifest.json").unlink()
    landing = next(b for b, c in buckets.items() if c is storage.landing)
    upload_folder(aws, tmp_path / "landing", f"s3://{landing}")
    # The PII key from the secret the deployed settings name, as on Glue (no key in the environment).
    secret = load_settings().pii_key_env
    aws.client("secretsmanager").create_secret(Name=deploy.serving.pii_key_secret, SecretString=os.environ[secret])
    monkeypatch.delenv(secret)
    monkeypatch.setattr("rfmlake.settings._SECRETS", {})
    monkeypatch.setattr("rfmlake.ingest.engine.SparkEngine", s3_duck_engine)
    monkeypatch.setattr("rfmlake.ingest.spark.get_spark", lambda *_a, **_k: None)
    work = tmp_path / "job"
    work.mkdir()
    (work / "settings.yaml").write_text(compute.settings_text)  # --extra-files: the job's working folder
    monkeypatch.chdir(work)
    monkeypatch.syspath_prepend(str(REPO / "src"))

    recorded_calls = []
    for stage, script in SCRIPTS.items():
        logical = compute.get_logical_id(compute.glue_jobs[stage])
        job = templates.resolve(compute.stack_name, synth_env.templates[compute.stack_name]["Resources"][logical]["Properties"])
        assert job["Command"]["ScriptLocation"].endswith(f"/glue/{script}")
        arguments = [part for name in ("--lake", "--landing", "--config", "--metrics")
                     if name in job["DefaultArguments"] for part in (name, job["DefaultArguments"][name])]
        assert arguments[arguments.index("--metrics") + 1] == "cloudwatch"
        namespace = runpy.run_path(str(REPO / "glue_jobs" / script), run_name="glue_job")
        with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
            assert namespace["main"]([script, *arguments]) == 0
        recorded_calls += assert_role_allows(synth_env, compute, compute.glue_role, requests,
                                             source=f"Glue job {stage}", buckets=buckets)

    lake_uri = next(f"s3://{b}/" for b, c in buckets.items() if c is storage.lake)
    lake = open_lake(lake_uri, load_settings(overrides={"prefix": platform.environment.prefix}), boto3_session=aws)
    assert lake.count_rows(lake.require("silver", "orders")) > 0 and lake.require("bronze", "quarantine")
    actions = {c.action for c in recorded_calls}
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "glue:GetTable", "glue:CreateTable",
            "secretsmanager:GetSecretValue", "cloudwatch:PutMetricData", "kms:GenerateDataKey"} <= actions
    # A fault put back: without the metrics statement, conform_silver's quarantine metrics are denied.
    missing = denials_without(synth_env, compute, compute.glue_role, recorded_calls, {"PipelineMetricsAnyResource"})
    assert missing and all("/GlueJobRole" in m and " may not cloudwatch:PutMetricData on *" in m for m in missing)
