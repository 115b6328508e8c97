"""The stage Lambda of the synthesized app, run here as the state machine invokes it: its handler
(lambdas/pipeline_stage), the environment the compute stack gives it and the Task's payload, against
a moto server holding the lake bucket (with the catalog stack's Glue databases), the artifacts bucket
with the settings the stack uploads, the PII key secret and the default EventBridge bus. Proves the
deployed function finds its settings and lake, that deploy.activation's destinations receive the
segment changes, and (the IAM check, rfmlake.deploy.iam_check) that every AWS call each of its stages
makes, in every environment of config/, is allowed by the function's synthesized role."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from aws_calls import ACCOUNT, REGION, assert_role_allows, denials_without, recorded
from aws_lake import activation_events_queue
from infra_synth import REPO, Synth, deployed_stage_function
from rfmlake.app.journeys import FolderJourneys
from rfmlake.deploy.iam_check import ApiCall
from rfmlake.deploy.journeys import seed_journeys
from rfmlake.lake import Lake
from rfmlake.lake.workspace import PII_FINGERPRINT, copy_tables
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.settings import load_settings

RUN_ID = "landing-2026-12-01-def456"


@dataclass
class DeployedStageFunction:
    handler: Any
    lake: Lake                    # the lake bucket, opened as the function opens it
    buckets: dict[str, Any]       # test bucket name -> the storage stack's bucket construct


def deploy_stage_function(synth: Synth, aws, monkeypatch: pytest.MonkeyPatch) -> DeployedStageFunction:
    """The buckets, Glue databases, uploaded settings and PII key secret of the synthesized app in moto,
    and the stage function's handler with the environment the compute stack gives it."""
    return DeployedStageFunction(*deployed_stage_function(synth, aws, monkeypatch, module_name="pipeline_stage_handler"))


def test_the_deployed_stage_function_activates_to_the_configured_destinations(
        synth: Synth, aws, monkeypatch: pytest.MonkeyPatch) -> None:
    compute, environment = synth.platform.compute, synth.platform.environment
    assert list(environment.deploy.activation.selected()) == ["file", "eventbridge"]  # config/dev.yaml
    deployed = deploy_stage_function(synth, aws, monkeypatch)
    lake, lake_bucket = deployed.lake, f"{synth.env}-lake"
    write_customers(lake, 6, no_consent={0})
    write_rfm(lake, round_robin(6))
    sqs, queue = aws.client("sqs"), activation_events_queue(aws)  # what reaches the default bus
    task = synth.platform.orchestration.definition["States"]["activate"]
    assert task["Parameters"]["Payload"] == {"stage": "activate", "run_id.$": "$$.Execution.Name", "input.$": "$"}
    payload = {"stage": "activate", "run_id": RUN_ID, "input": {}}  # as Step Functions fills it in

    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        result = deployed.handler(payload, None)
    # every call the function made (S3 through pyarrow too) is allowed by its synthesized role
    calls = assert_role_allows(synth, compute, compute.stage_function_role, requests, source="stage function: activate",
                               buckets=deployed.buckets)
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


def _sent_emails(sender: str) -> list[Any]:
    """The emails moto's SES received from `sender` (the server runs in this process: tests/aws_lake.py)."""
    from moto.ses.models import ses_backends

    return [m for m in ses_backends[ACCOUNT][REGION].sent_messages if m.source == sender]


# The stages the function runs (runtime "python"), in the order the state machine invokes them.
FUNCTION_STAGES = [stage.name for stage in PIPELINE if stage.runtime == "python"]
# What the stage function's stages build; everything else is what Glue, dbt-athena and the processing
# jobs leave on S3 before them.
FUNCTION_BUILT = {"gold.identity_graph", "gold.identity_matches", "gold.identity_changes", "gold.customer_profile"}


def test_every_stage_of_the_stage_function_calls_only_what_its_role_allows(
        synth_env: Synth, built_lake: Lake, aws, monkeypatch: pytest.MonkeyPatch) -> None:
    """The IAM check of the stage function's role, recorded: each of its stages, in every environment,
    run by the deployed handler against the lake as the earlier stages leave it on S3."""
    compute = synth_env.platform.compute
    assert FUNCTION_STAGES == ["quality_silver", "identity", "quality_gold", "profiles", "activate", "journeys"]
    deployed = deploy_stage_function(synth_env, aws, monkeypatch)
    upstream = [r.qualified_name for r in built_lake.tables() if r.qualified_name not in FUNCTION_BUILT]
    copy_tables(built_lake, deployed.lake, upstream)
    deployed.lake.write_system((built_lake.system_dir / PII_FINGERPRINT).read_bytes(), PII_FINGERPRINT)
    activation_events_queue(aws)
    # The journeys folder as `rfmlake deploy` seeds it (paused), a journey started in the marketing app,
    # and the SES sender identity the deployed settings name (a prerequisite: docs/deployment.md).
    settings = load_settings(os.environ["RFMLAKE_CONFIG"])
    folder = settings.journeys.dir
    assert folder == f"s3://{synth_env.env}-artifacts/journeys/"
    seed_journeys(REPO / "journeys", folder, boto3_session=aws)
    FolderJourneys(folder, deployed.lake, settings).set_status("win_back_at_risk", "active")
    if settings.journeys.email.destination == "ses":
        aws.client("sesv2").create_email_identity(EmailIdentity=str(settings.journeys.email.from_address))

    checked: dict[str, set[str]] = {}
    results: dict[str, Any] = {}
    recorded_calls: list[ApiCall] = []
    for stage in FUNCTION_STAGES:
        with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
            results[stage] = deployed.handler({"stage": stage, "run_id": RUN_ID, "input": {}}, None)
        calls = assert_role_allows(synth_env, compute, compute.stage_function_role, requests,
                                   source=f"stage function: {stage}", buckets=deployed.buckets)
        checked[stage] = {c.action for c in calls}
        recorded_calls += calls

    # each stage did its work on S3, so the calls checked are the ones its work needs
    assert results["quality_silver"]["lake"] == results["quality_gold"]["lake"] == {"read_in_place": True}
    assert {"gold.identity_graph", "gold.identity_matches", "gold.identity_changes"} <= set(
        results["identity"]["lake"]["committed"])
    assert set(results["profiles"]["lake"]["committed"]) == {"gold.customer_profile"}
    assert results["activate"]["summary"]["eventbridge"]["sent"] > 0
    assert "secretsmanager:GetSecretValue" in checked["identity"]  # the PII key, from the deployed secret
    assert {"glue:UpdateTable", "s3:PutObject"} <= checked["identity"] & checked["profiles"]
    assert "events:PutEvents" in checked["activate"]
    assert all(checked[stage] for stage in FUNCTION_STAGES)
    # journeys: the started journey from the app's folder admitted At Risk customers and emailed the treated
    journeys = results["journeys"]["summary"]
    assert journeys["journeys"] == 1 and journeys["entered"]["win_back_at_risk"] > 0
    emails = _sent_emails(str(settings.journeys.email.from_address))
    if settings.journeys.email.destination == "ses":  # dev (config/dev.yaml)
        assert journeys["sent"] == len(emails) > 0 and journeys["failed"] == 0
        assert "ses:SendEmail" in checked["journeys"]
    else:  # the outbox in the lake
        assert journeys["sent"] > 0 and emails == []
        assert deployed.lake.storage.walk(f"s3://{synth_env.env}-lake/gold/_journeys/outbox")
    assert synth_env.env != "dev" or settings.journeys.email.destination == "ses"
    # A fault put back: without the journeys folder's read, or the sender's statement, the stage is denied.
    missing = denials_without(synth_env, compute, compute.stage_function_role, recorded_calls, {"JourneysReadObjects"})
    assert any(" may not s3:GetObject on arn:aws:s3:::" in m and "/journeys/win_back_at_risk.yaml" in m
               and "stage function: journeys" in m for m in missing), missing
    if settings.journeys.email.destination == "ses":
        (missing,) = denials_without(synth_env, compute, compute.stage_function_role, recorded_calls, {"JourneysSend"})
        assert " may not ses:SendEmail on arn:aws:ses:eu-west-1:" in missing and "stage function: journeys" in missing
    # A fault put back: without the secret's statement the recorded identity stage is denied, named.
    (missing,) = denials_without(synth_env, compute, compute.stage_function_role, recorded_calls, {"PiiKeySecretRead"})
    assert "/StageFunctionRole" in missing and " may not secretsmanager:GetSecretValue on " in missing
    assert "stage function: identity" in missing
