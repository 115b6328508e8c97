"""The stage Lambda of the synthesized app, run here as the state machine invokes it: its handler
(lambdas/pipeline_stage), the environment the compute stack gives it and the Task's payload, against
a moto server holding the lake bucket (with the catalog stack's Glue databases), the artifacts bucket
with the settings the stack uploads, and the default EventBridge bus. Proves the deployed function
finds its settings and lake, and that deploy.activation's destinations receive the segment changes."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from aws_calls import assert_role_allows, recorded
from aws_lake import activation_events_queue
from infra_synth import REPO, Synth
from rfmlake.lake import open_lake
from rfmlake.settings import load_settings

RUN_ID = "landing-2026-12-01-def456"


def _bucket(aws, name: str) -> str:
    aws.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return name


def test_the_deployed_stage_function_activates_to_the_configured_destinations(
        synth: Synth, aws, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute, environment = synth.platform.compute, synth.platform.environment
    assert list(environment.deploy.activation.selected()) == ["file", "eventbridge"]  # config/dev.yaml
    lake_bucket, artifacts = _bucket(aws, "dev-lake"), _bucket(aws, "dev-artifacts")
    for zone in ("bronze", "silver", "gold"):
        aws.client("glue").create_database(DatabaseInput={"Name": f"{environment.prefix}_{zone}"})
    aws.client("s3").put_object(Bucket=artifacts, Key="config/settings.yaml", Body=compute.settings_text.encode())
    lake = open_lake(f"s3://{lake_bucket}/", load_settings(overrides={"prefix": environment.prefix}),
                     boto3_session=aws)
    write_customers(lake, 6, no_consent={0})
    write_rfm(lake, round_robin(6))
    sqs, queue = aws.client("sqs"), activation_events_queue(aws)  # what reaches the default bus

    buckets = {compute.storage.lake.bucket_name: lake_bucket, compute.storage.artifacts.bucket_name: artifacts,
               compute.storage.landing.bucket_name: "dev-landing"}
    for name, value in compute.stage_function_env.items():
        for token, bucket in buckets.items():
            value = value.replace(token, bucket)
        monkeypatch.setenv(name, value)
    task = synth.platform.orchestration.definition["States"]["activate"]
    assert task["Parameters"]["Payload"] == {"stage": "activate", "run_id.$": "$$.Execution.Name", "input.$": "$"}
    payload = {"stage": "activate", "run_id": RUN_ID, "input": {}}  # as Step Functions fills it in
    spec = importlib.util.spec_from_file_location("pipeline_stage_handler", REPO / "lambdas" / "pipeline_stage" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        result = module.handler(payload, None)
    # every call the function made (S3 through pyarrow too) is allowed by its synthesized role
    calls = assert_role_allows(synth, compute, compute.stage_function_role, requests, source="stage function: activate",
                               buckets={lake_bucket: compute.storage.lake, artifacts: compute.storage.artifacts})
    assert {"events:PutEvents", "s3:PutObject", "glue:GetTable"} <= {c.action for c in calls}

    assert result["run_id"] == RUN_ID
    reports = result["summary"]
    assert reports["file"]["sent"] == reports["eventbridge"]["sent"] == 5  # the five consenting customers
    assert reports["eventbridge"]["failed"] == 0
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 5
    exports = lake.storage.walk(f"s3://{lake_bucket}/gold/_activation")
    assert any(uri.endswith("_manifest.json") for uri in exports)
    state = [uri.split("/_system/")[1] for uri in lake.storage.walk(lake.system_uri())]
    assert any(s.startswith("activation/") for s in state)
    # /tmp holds the workspace: as large as configured (deploy.lambdas.ephemeral_storage_mb)
    (function,) = [r["Properties"] for r in synth.templates[compute.stack_name]["Resources"].values()
                   if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("FunctionName") ==
                   f"{environment.resource_prefix}-pipeline-stage"]
    assert function["EphemeralStorage"] == {"Size": environment.deploy.lambdas.ephemeral_storage_mb} == {"Size": 10240}
    # its role may call exactly what those destinations need
    role_id = compute.get_logical_id(compute.stage_function_role.node.default_child)
    template = synth.templates[compute.stack_name]
    statements = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                  and r["Properties"]["Roles"] == [{"Ref": role_id}] for s in r["Properties"]["PolicyDocument"]["Statement"]]
    (put_events,) = [s for s in statements if s.get("Sid") == "ActivationEventbridge"]
    assert put_events["Action"] == "events:PutEvents"
    assert json.dumps(put_events["Resource"]).endswith(':event-bus/default"]]}')
    assert not [s for s in statements if str(s.get("Sid", "")).startswith("Activation") and s is not put_events]
