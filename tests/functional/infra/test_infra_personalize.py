"""The Personalize stack (recommendations.personalize.enabled), synthesized for every environment in
config/ with the setting on: the dataset group, the schemas the adapter exports in, the solution, the
exchange bucket, the cycle's every Task a valid Personalize request (botocore's model; Personalize
has no emulator), its trigger, and the pipeline role's access. With the setting off (every env's
default) the platform has no such stack."""

from __future__ import annotations

import functools
import json
import re
import sys
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from infra_synth import ENVIRONMENTS, REPO
from rfmlake.recommend.personalize import DATASET_TYPES, SCHEMAS

pytestmark = pytest.mark.slow
_TOKEN = re.compile(r"\$\{Token\[[^\]]+\]\}")


@functools.cache
def personalize_template(env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(template, state machine definition) of the stack beside a stand-in for the pipeline's role."""
    pytest.importorskip("aws_cdk")
    sys.path.insert(0, str(REPO / "infra"))
    import aws_cdk as cdk
    from aws_cdk import aws_iam as iam
    from rfmlake_infra.personalize import PersonalizeStack

    from rfmlake.deploy import load_environment
    from rfmlake.settings import Settings

    environment = load_environment(env, REPO / "config")
    data = environment.settings.model_dump()
    data["recommendations"]["personalize"]["enabled"] = True
    environment = environment.model_copy(update={"settings": Settings.model_validate(data)})
    app = cdk.App()
    compute = cdk.Stack(app, "Compute")
    role = iam.Role(compute, "SageMakerRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    stack = PersonalizeStack(app, "Personalize", environment=environment, pipeline_role=role)
    template = app.synth().get_stack_by_name("Personalize").template
    return template, stack.definition


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dataset_group_schemas_datasets_and_solution(env: str) -> None:
    template, _ = personalize_template(env)
    (group,) = resources(template, "AWS::Personalize::DatasetGroup")
    assert group["Name"].endswith("-recommendations")
    schemas = {s["Name"].rsplit("-", 1)[1]: json.loads(s["Schema"]) for s in resources(template, "AWS::Personalize::Schema")}
    assert schemas == {kind.lower(): SCHEMAS[kind] for kind in DATASET_TYPES}
    assert sorted(d["DatasetType"] for d in resources(template, "AWS::Personalize::Dataset")) == sorted(DATASET_TYPES)
    (solution,) = resources(template, "AWS::Personalize::Solution")
    assert solution["RecipeArn"] == "arn:aws:personalize:::recipe/aws-user-personalization-v2"
    assert {"ExchangeUri", "SolutionArn"} <= set(template["Outputs"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exchange_bucket_is_private_and_readable_by_personalize_only_from_this_account(env: str) -> None:
    template, _ = personalize_template(env)
    (bucket,) = resources(template, "AWS::S3::Bucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    (notifications,) = resources(template, "Custom::S3BucketNotifications")  # how CDK turns EventBridge on
    assert "EventBridgeConfiguration" in notifications["NotificationConfiguration"]
    (policy,) = resources(template, "AWS::S3::BucketPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    service = [s for s in statements if s.get("Principal") == {"Service": "personalize.amazonaws.com"}]
    assert service and all("aws:SourceAccount" in s["Condition"]["StringEquals"] for s in service)


def _fill(value: Any) -> Any:
    """Parameters as the service receives them: JSONPath and intrinsic fields given a value of their kind."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith(".$"):
                out[key[:-2]] = ("s3://bucket/runs/r/x/" if "s3://" in item else
                                 "arn:aws:personalize:eu-west-1:123456789012:solution/s/v" if "Arn" in key else
                                 "rfmlake-job-20261207T010116Z-7ed58c")
            else:
                out[key] = _fill(item)
        return out
    if isinstance(value, str):
        return _TOKEN.sub("arn:aws:personalize:eu-west-1:123456789012:resolved-at-deploy", value)
    return value


def _api_names(value: Any, shape: Any) -> Any:
    if shape.type_name == "structure" and isinstance(value, dict):
        members = {name.lower(): name for name in shape.members}
        return {members.get(k.lower(), k): _api_names(v, shape.members[members[k.lower()]])
                if k.lower() in members else v for k, v in value.items()}
    return value


def _all_tasks(definition: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for state in definition["States"].values():
        if state["Type"] == "Task":
            found.append(state)
        for branch in state.get("Branches", []):
            found.extend(_all_tasks(branch))
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_cycle_task_is_a_valid_personalize_request(env: str) -> None:
    _, definition = personalize_template(env)
    model = botocore.session.get_session().get_service_model("personalize")
    tasks = _all_tasks(definition)
    operations = []
    for task in tasks:
        prefix = "arn:aws:states:::aws-sdk:personalize:"
        assert task["Resource"].startswith(prefix)
        operation = task["Resource"].removeprefix(prefix)
        operation = operation[0].upper() + operation[1:]
        shape = model.operation_model(operation).input_shape
        report = ParamValidator().validate(_api_names(_fill(task["Parameters"]), shape), shape)
        assert not report.has_errors(), f"{operation}: {report.generate_report()}"
        operations.append(operation)
    assert sorted(set(operations)) == sorted({
        "CreateDatasetImportJob", "DescribeDatasetImportJob", "CreateSolutionVersion", "DescribeSolutionVersion",
        "CreateBatchInferenceJob", "DescribeBatchInferenceJob"})
    assert operations.count("CreateDatasetImportJob") == 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_cycle_starts_when_a_run_export_is_ready_and_the_pipeline_role_may_use_it(env: str) -> None:
    template, definition = personalize_template(env)
    (rule,) = resources(template, "AWS::Events::Rule")
    assert rule["EventPattern"]["detail"]["object"]["key"] == [{"wildcard": "runs/*/ready.json"}]
    assert definition["States"]["RunId"]["Parameters"]["run_id.$"].startswith("States.ArrayGetItem(")
    policies = [p for p in resources(template, "AWS::IAM::Policy") if p["PolicyName"].startswith("PipelineAccess")]
    (pipeline,) = policies
    actions = {a for s in pipeline["PolicyDocument"]["Statement"] for a in
               ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert {"s3:PutObject", "personalize:ListBatchInferenceJobs", "personalize:DescribeBatchInferenceJob",
            "personalize:ListSolutionVersions"} <= actions
    cycle_role = [p for p in resources(template, "AWS::IAM::Policy") if p["PolicyName"].startswith("CycleRole")]
    statements = cycle_role[0]["PolicyDocument"]["Statement"]
    assert any(s["Action"] == "iam:PassRole" and s["Condition"]["StringEquals"]["iam:PassedToService"]
               == "personalize.amazonaws.com" for s in statements)


def test_off_by_default_the_platform_has_no_personalize_stack(synth) -> None:
    assert synth.platform.personalize is None
    assert not any("Personalize" in name for name in synth.templates)
