"""The Step Functions definition is generated from PIPELINE: same stages, same order, retries, failure
path, and the run summary written on success and on failure."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from rfmlake.errors import ConfigError
from rfmlake.pipeline.definition import PIPELINE, Stage, stage_names
from rfmlake.pipeline.stepfunctions import (
    FAIL_STATE,
    FINISHED_PREFIX,
    NOTIFY_STATE,
    RECORD_FAILED_STATE,
    RECORD_START_STATE,
    ROLL_BACK_STATE,
    render_state_machine,
    render_state_machine_json,
    task_state_names,
)
from state_machine_walk import assert_summary_on_both_paths

TOPIC = "arn:aws:sns:eu-west-1:123456789012:rfmlake-failures"
STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}


def resources_for(pipeline: tuple[Stage, ...]) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for stage in pipeline:
        if stage.runtime == "spark":
            stages[stage.name] = {"job_name": f"rfmlake-{stage.name}", "arguments": {"--lake": "s3://lake/"}}
        elif stage.runtime == "dbt":
            stages[stage.name] = {"project_name": "rfmlake-dbt"}
        elif stage.runtime == "segmentation":
            stages[stage.name] = {"processing": {
                "AppSpecification": {"ImageUri": "img", "ContainerEntrypoint": ["python3", "x.py"]},
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                          "VolumeSizeInGB": 30}},
                "RoleArn": "arn:aws:iam::123456789012:role/sm",
                "Environment": {"RFMLAKE_STAGE": stage.name},
            }}
        else:
            stages[stage.name] = {"function_arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{stage.name}"}
    return {"failure_topic_arn": TOPIC, "stages": stages,
            "run_summary_function_arn": "arn:aws:lambda:eu-west-1:123456789012:function:stage"}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return render_state_machine(PIPELINE, resources=resources_for(PIPELINE))


def test_task_order_equals_the_local_pipeline(definition: dict[str, Any]) -> None:
    assert task_state_names(definition) == stage_names()
    # the run's start pointers are recorded before the first stage (what a failure is rolled back to)
    assert definition["StartAt"] == RECORD_START_STATE
    assert definition["States"][RECORD_START_STATE]["Next"] == PIPELINE[0].name


def test_every_task_retries_as_the_stage_says_and_catches_into_the_failure_path(definition: dict[str, Any]) -> None:
    states = definition["States"]
    for stage in PIPELINE:
        task = states[stage.name]
        assert task["Retry"][0]["MaxAttempts"] == stage.max_attempts - 1
        assert task["Retry"][0]["BackoffRate"] > 1
        (catch,) = task["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"]
        failed = states[catch["Next"]]
        assert failed["Type"] == "Pass" and failed["Result"] == stage.name
        assert failed["Next"] == ROLL_BACK_STATE  # the rollback, the run summary, then the notification
    rollback = states[ROLL_BACK_STATE]
    assert rollback["Next"] == RECORD_FAILED_STATE and rollback["Catch"][0]["Next"] == RECORD_FAILED_STATE
    record = states[RECORD_FAILED_STATE]
    assert record["Next"] == NOTIFY_STATE and record["Catch"][0]["Next"] == NOTIFY_STATE
    notify = states[NOTIFY_STATE]
    assert notify["Resource"] == "arn:aws:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"] == TOPIC
    assert notify["Next"] == FAIL_STATE and notify["Catch"][0]["Next"] == FAIL_STATE
    assert states[FAIL_STATE]["Type"] == "Fail"
    for name, state in states.items():
        if state["Type"] == "Task":
            assert state.get("Retry") and state.get("Catch"), name


def test_each_runtime_maps_to_its_service(definition: dict[str, Any]) -> None:
    resource = {
        "spark": "arn:aws:states:::glue:startJobRun.sync",
        "dbt": "arn:aws:states:::codebuild:startBuild.sync",
        "segmentation": "arn:aws:states:::sagemaker:createProcessingJob.sync",
        "python": "arn:aws:states:::lambda:invoke",
    }
    for stage in PIPELINE:
        task = definition["States"][stage.name]
        assert task["Resource"] == resource[stage.runtime], stage.name
        if stage.runtime == "spark":
            assert task["Parameters"]["JobName"] == f"rfmlake-{stage.name}"
            assert task["Parameters"]["Arguments"]["--run_id.$"] == "$$.Execution.Name"
            assert task["Parameters"]["Arguments"]["--lake"] == "s3://lake/"
        if stage.runtime == "segmentation":
            assert task["Parameters"]["Environment"]["RFMLAKE_STAGE"] == stage.name
            assert "ProcessingJobName.$" in task["Parameters"]


def test_definition_is_structurally_valid_asl(definition: dict[str, Any]) -> None:
    states = definition["States"]
    reachable: set[str] = set()
    frontier = [definition["StartAt"]]
    while frontier:
        name = frontier.pop()
        if name in reachable:
            continue
        reachable.add(name)
        state = states[name]  # every Next / Catch target exists
        assert state["Type"] in STATE_TYPES
        if state["Type"] in {"Succeed", "Fail"}:
            assert "Next" not in state and "End" not in state
        else:
            assert ("Next" in state) != bool(state.get("End")), name
        targets = [state.get("Next")] + [c["Next"] for c in state.get("Catch", [])]
        frontier += [t for t in targets if t]
        for retrier in state.get("Retry", []):
            assert retrier["ErrorEquals"] and retrier["MaxAttempts"] >= 0
    assert reachable == set(states), "unreachable states"
    assert len(json.dumps(definition)) < 1_000_000  # the Step Functions definition size limit


def test_botocore_accepts_the_create_request(definition: dict[str, Any]) -> None:
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("stepfunctions", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    request = {
        "name": "rfmlake-pipeline",
        "definition": render_state_machine_json(PIPELINE, resources=resources_for(PIPELINE)),
        "roleArn": "arn:aws:iam::123456789012:role/sfn",
        "type": "STANDARD",
    }
    with Stubber(client) as stub:
        stub.add_response("create_state_machine",
                          {"stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:x",
                           "creationDate": "2026-01-01T00:00:00Z"}, request)
        client.create_state_machine(**request)
        stub.assert_no_pending_responses()
    assert json.loads(request["definition"]) == definition


def test_a_reordered_pipeline_renders_in_its_own_order() -> None:
    reordered = (PIPELINE[1], PIPELINE[0], *PIPELINE[2:])
    rendered = render_state_machine(reordered, resources=resources_for(reordered))
    assert task_state_names(rendered) == [s.name for s in reordered]


def test_non_critical_stage_continues_on_error() -> None:
    pipeline = (PIPELINE[0], replace(PIPELINE[2], critical=False), PIPELINE[3])
    rendered = render_state_machine(pipeline, resources=resources_for(pipeline))
    catch = rendered["States"][PIPELINE[2].name]["Catch"][0]
    assert catch["Next"] == FINISHED_PREFIX + PIPELINE[2].name  # its end is recorded, then the next stage
    assert rendered["States"][catch["Next"]]["Next"] == PIPELINE[3].name
    assert catch["ResultPath"] == f"$.errors.{PIPELINE[2].name}"


@pytest.mark.parametrize("lease", [False, True])
def test_the_run_summary_is_written_on_success_and_after_every_stage_failure(lease: bool) -> None:
    resources = resources_for(PIPELINE) | ({"run_lease_table": "rfmlake-run-lease"} if lease else {})
    assert_summary_on_both_paths(render_state_machine(PIPELINE, resources=resources), PIPELINE,
                                 function_arn=resources["run_summary_function_arn"])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("failure_topic_arn"), "failure_topic_arn is required"),
        (lambda r: r.pop("run_summary_function_arn"), "run_summary_function_arn is required"),
        (lambda r: r["stages"].pop("dbt_build"), "stage dbt_build (dbt) has no AWS resource"),
        (lambda r: r["stages"]["ingest_bronze"].pop("job_name"), "ingest_bronze (spark) is missing: job_name"),
        (lambda r: r["stages"].update(nope={"job_name": "x"}), "stages the pipeline does not have: ['nope']"),
        (lambda r: r["stages"]["segmentation"]["processing"].pop("RoleArn"), "processing is missing: RoleArn"),
        (lambda r: r["stages"]["segmentation"].update(job_prefix="bad_prefix"), "job_prefix 'bad_prefix'"),
    ],
)
def test_missing_or_bad_resources_are_named(mutate: Any, message: str) -> None:
    resources = resources_for(PIPELINE)
    mutate(resources)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        render_state_machine(PIPELINE, resources=resources)


def test_duplicate_stage_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="repeated"):
        render_state_machine((PIPELINE[0], PIPELINE[0]), resources=resources_for(PIPELINE[:1]))


def test_a_failed_execution_rolls_back_before_its_summary_and_a_failed_rollback_still_notifies(
        definition: dict[str, Any]) -> None:
    from state_machine_walk import assert_rollback_on_the_failure_path

    assert_rollback_on_the_failure_path(definition, PIPELINE)
    leased = render_state_machine(PIPELINE, resources={**resources_for(PIPELINE), "run_lease_table": "lease"})
    assert_rollback_on_the_failure_path(leased, PIPELINE)
