"""One run at a time, by construction, against a moto server (DynamoDB and Step Functions): the lease
table and state machine as the orchestration stack creates them, the start function's handler as
deployed, and the lease states of the rendered state machine run as Step Functions sends them."""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from aws_calls import assert_role_allows, recorded
from infra_synth import REPO, Synth, resources
from rfmlake.pipeline.stepfunctions import HOLD_LEASE_STATE, RELEASE_LEASE_AFTER_FAILURE_STATE, RELEASE_LEASE_STATE
from rfmlake.pipeline.trigger import MANUAL_MESSAGE, SCHEDULE_MESSAGE, PipelineBusy

pytest.importorskip("aws_cdk")


def landing_batch(*keys: str) -> dict[str, Any]:
    return {"Records": [{"body": json.dumps({"detail": {"bucket": {"name": "landing"}, "object": {"key": k}}})}
                        for k in keys]}


SCHEDULE_TICK = {"Records": [{"body": json.dumps(SCHEDULE_MESSAGE)}]}


def deployed(synth: Synth, aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    """The lease table and the state machine of the orchestration stack in moto, and the start
    function's handler with the environment the stack gives it."""
    orchestration = synth.platform.orchestration
    template = synth.templates[orchestration.stack_name]
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    aws.client("dynamodb").create_table(TableName=props["TableName"], KeySchema=props["KeySchema"],
                                        AttributeDefinitions=props["AttributeDefinitions"],
                                        BillingMode=props["BillingMode"])
    (machine,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    arn = aws.client("stepfunctions").create_state_machine(
        name=machine["Properties"]["StateMachineName"], definition=json.dumps(orchestration.definition, default=str),
        roleArn="arn:aws:iam::123456789012:role/pipeline")["stateMachineArn"]
    (function,) = [r["Properties"] for r in resources(template, "AWS::Lambda::Function").values()
                   if r["Properties"].get("FunctionName", "").endswith("-start-pipeline")]
    assert function["ReservedConcurrentExecutions"] == 1
    env = function["Environment"]["Variables"]
    assert set(env) == {"RFMLAKE_STATE_MACHINE_ARN", "RFMLAKE_RUN_LEASE_TABLE"}
    monkeypatch.setenv("RFMLAKE_STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("RFMLAKE_RUN_LEASE_TABLE", props["TableName"])
    spec = importlib.util.spec_from_file_location("start_pipeline_handler", REPO / "lambdas" / "start_pipeline" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler, arn, props["TableName"]


def run_lease_state(synth: Synth, aws: boto3.Session, state: str, execution: str) -> None:
    """Make the DynamoDB call a lease state makes, with its Parameters as Step Functions fills them in."""
    task = synth.platform.orchestration.definition["States"][state]

    def fill(value: Any) -> Any:
        if isinstance(value, dict):
            return {k.removesuffix(".$"): (execution if v == "$$.Execution.Name" else "2026-12-01T03:00:00Z")
                    if k.endswith(".$") else fill(v) for k, v in value.items()}
        return value

    operation = task["Resource"].rsplit(":", 1)[1]  # arn:aws:states:::dynamodb:deleteItem
    params = fill(task["Parameters"])
    params["TableName"] = synth.platform.orchestration.lease_table.node.default_child.table_name
    getattr(aws.client("dynamodb"), {"deleteItem": "delete_item", "updateItem": "update_item"}[operation])(**params)


def race(handler: Any, events: list[dict[str, Any]]) -> list[Any]:
    """Call the handler with each event at the same moment, each in its own thread (two Lambda instances)."""
    barrier, results = threading.Barrier(len(events)), [None] * len(events)

    def one(index: int) -> None:
        barrier.wait()
        try:
            results[index] = handler(events[index], None)
        except PipelineBusy as exc:
            results[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(events))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_triggers_at_once_start_exactly_one_run(synth: Synth, aws: boto3.Session,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    handler, machine, _table = deployed(synth, aws, monkeypatch)
    sfn = aws.client("stepfunctions")
    for round_ in range(5):
        # the schedule's tick names one run per UTC day: it races in the first round only
        other = SCHEDULE_TICK if round_ == 0 else landing_batch(f"customers/{round_}.csv")
        results = race(handler, [landing_batch(f"orders/{round_}.csv"), other])
        started = [r for r in results if isinstance(r, dict) and r["started"]]
        assert len(started) == 1, results
        assert sum(isinstance(r, PipelineBusy) for r in results) == 1, results
        running = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]
        assert [e["name"] for e in running] == [started[0]["execution_name"]]
        # the run ends: its last state gives the lease back (success and failure paths alike)
        release = RELEASE_LEASE_STATE if round_ % 2 else RELEASE_LEASE_AFTER_FAILURE_STATE
        run_lease_state(synth, aws, release, started[0]["execution_name"])
        sfn.stop_execution(executionArn=started[0]["execution_arn"])
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 5


def test_a_stopped_run_frees_the_lease_and_a_redelivered_batch_starts_nothing_twice(
        synth: Synth, aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, machine, _table = deployed(synth, aws, monkeypatch)
    sfn = aws.client("stepfunctions")
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        first = handler(landing_batch("orders/a.csv"), None)
        assert first["started"]
        with pytest.raises(PipelineBusy):
            handler(landing_batch("orders/c.csv"), None)
    orchestration = synth.platform.orchestration
    calls = assert_role_allows(synth, orchestration, orchestration.start_function.role, requests,
                               source="start function", buckets={})
    assert {"dynamodb:PutItem", "dynamodb:GetItem", "states:StartExecution", "states:DescribeExecution"} <= {
        c.action for c in calls}
    assert handler(landing_batch("orders/a.csv"), None)["reason"] == "already running"  # SQS redelivery
    with pytest.raises(PipelineBusy, match=f"execution {first['execution_name']} is running"):
        handler(landing_batch("orders/b.csv"), None)
    # stopped by hand: its release state never ran; the next trigger takes the lease over
    sfn.stop_execution(executionArn=first["execution_arn"])
    second = handler(landing_batch("orders/b.csv"), None)
    assert second["started"] and second["execution_name"] != first["execution_name"]
    run_lease_state(synth, aws, RELEASE_LEASE_STATE, second["execution_name"])
    sfn.stop_execution(executionArn=second["execution_arn"])
    # the first batch delivered again after its run ended: Step Functions refuses the same name
    assert handler(landing_batch("orders/a.csv"), None)["reason"] == "already ran"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 2


def test_an_execution_not_started_by_the_trigger_cannot_hold_the_lease(
        synth: Synth, aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state machine's first state: only the execution the trigger wrote into the lease gets past it."""
    handler, _machine, _table = deployed(synth, aws, monkeypatch)
    definition = synth.platform.orchestration.definition
    assert definition["StartAt"] == HOLD_LEASE_STATE
    assert definition["TimeoutSeconds"] == 24 * 3600
    started = handler(SCHEDULE_TICK, None)
    run_lease_state(synth, aws, HOLD_LEASE_STATE, started["execution_name"])  # the holder passes
    dynamodb = aws.client("dynamodb")
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        run_lease_state(synth, aws, HOLD_LEASE_STATE, "started-from-the-console")
    catch = definition["States"][HOLD_LEASE_STATE]["Catch"][0]
    assert catch["ErrorEquals"] == ["DynamoDB.ConditionalCheckFailedException"]
    assert definition["States"][catch["Next"]]["Type"] == "Fail"
    assert started["execution_name"].startswith(f"schedule-{datetime.now(UTC):%Y%m%d}-")


def test_a_run_by_hand_starts_after_the_days_scheduled_run_and_once_per_request(
        synth: Synth, aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/deployment.md: an operator sends {"trigger": "manual"} to the queue. The day's schedule tick
    names one run per day, so a second tick starts nothing; each manual request starts a run, and SQS
    delivering the same request again starts nothing twice."""
    handler, machine, _table = deployed(synth, aws, monkeypatch)
    sfn = aws.client("stepfunctions")

    def finish(started: dict[str, Any]) -> None:
        run_lease_state(synth, aws, RELEASE_LEASE_STATE, started["execution_name"])
        sfn.stop_execution(executionArn=started["execution_arn"])

    finish(handler(SCHEDULE_TICK, None))
    assert handler(SCHEDULE_TICK, None)["reason"] == "already ran"
    request = {"Records": [{"messageId": "059f36b4-87a3-44ab-83d2-661975830a7d", "body": json.dumps(MANUAL_MESSAGE)}]}
    manual = handler(request, None)
    assert manual["started"] and manual["execution_name"].startswith(f"manual-{datetime.now(UTC):%Y%m%d}-")
    run_lease_state(synth, aws, HOLD_LEASE_STATE, manual["execution_name"])  # its first state lets it through
    assert handler(request, None)["reason"] == "already running"  # delivered again while it runs
    finish(manual)
    assert handler(request, None)["reason"] == "already ran"
    again = {"Records": [{"messageId": "7d0a4a2c-5c36-4d8e-9a40-0b3c2f1e9d11", "body": json.dumps(MANUAL_MESSAGE)}]}
    assert handler(again, None)["started"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert len(names) == 3 and sum(n.startswith("manual-") for n in names) == 2


def test_the_schedule_reaches_the_same_queue_as_landing_events(synth: Synth) -> None:
    template = synth.templates[synth.platform.orchestration.stack_name]
    rules = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()]
    (schedule,) = [r for r in rules if "ScheduleExpression" in r]
    (landing,) = [r for r in rules if r.get("EventPattern", {}).get("detail-type") == ["Object Created"]]
    assert [t["Arn"] for t in schedule["Targets"]] == [t["Arn"] for t in landing["Targets"]]
    assert json.loads(schedule["Targets"][0]["Input"]) == SCHEDULE_MESSAGE
    assert not [r for r in resources(template, "AWS::Events::Rule").values()
                if any("states" in json.dumps(t["Arn"]) for t in r["Properties"].get("Targets", []))]
    (stage_function,) = [r["Properties"] for r in resources(synth.templates[synth.platform.compute.stack_name],
                                                            "AWS::Lambda::Function").values()
                         if r["Properties"].get("FunctionName", "").endswith("-pipeline-stage")]
    assert stage_function["ReservedConcurrentExecutions"] == 1


def landing_notifications(synth: Synth, aws: boto3.Session) -> tuple[str, Any]:
    """The landing bucket (versioned, events to EventBridge) and the landing rule -> queue path of the
    storage and orchestration stacks, in moto; returns the bucket and a function that receives what
    the queue holds as the start function's SQS batch."""
    template = synth.templates[synth.platform.orchestration.stack_name]
    (rule,) = [r["Properties"] for r in resources(template, "AWS::Events::Rule").values()
               if r["Properties"].get("EventPattern", {}).get("detail-type") == ["Object Created"]]
    s3, sqs, events = aws.client("s3"), aws.client("sqs"), aws.client("events")
    bucket = "landing"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
    queue = sqs.create_queue(QueueName="landing-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {**rule["EventPattern"], "detail": {"bucket": {"name": [bucket]}}}  # the bucket's name, resolved
    events.put_rule(Name="landing", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="landing", Targets=[{"Id": "queue", "Arn": queue_arn}])

    def receive() -> dict[str, Any]:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return {"Records": [{"body": m["Body"]} for m in messages]}

    return bucket, receive


def test_a_file_uploaded_again_the_same_day_starts_a_new_run_and_duplicate_notifications_none(
        synth: Synth, aws: boto3.Session, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, machine, _table = deployed(synth, aws, monkeypatch)
    sfn, s3 = aws.client("stepfunctions"), aws.client("s3")
    bucket, receive = landing_notifications(synth, aws)

    s3.put_object(Bucket=bucket, Key="orders/2026-12-01.csv", Body=b"order_id\no1\n")
    batch = receive()
    assert len(batch["Records"]) == 1
    first = handler(batch, None)
    assert first["started"]
    # EventBridge and SQS deliver at least once: the same notification again starts nothing
    assert handler(batch, None)["reason"] == "already running"
    assert handler({"Records": batch["Records"] * 2}, None)["execution_name"] == first["execution_name"]
    run_lease_state(synth, aws, RELEASE_LEASE_STATE, first["execution_name"])  # the run ends
    sfn.stop_execution(executionArn=first["execution_arn"])
    assert handler(batch, None)["reason"] == "already ran"

    # the same key, corrected and uploaded again that day: a new upload, so a new run
    s3.put_object(Bucket=bucket, Key="orders/2026-12-01.csv", Body=b"order_id\no1\no2\n")
    again = receive()
    assert json.loads(again["Records"][0]["body"])["detail"]["object"]["key"] == "orders/2026-12-01.csv"
    second = handler(again, None)
    assert second["started"] and second["execution_name"] != first["execution_name"]
    assert json.loads(sfn.describe_execution(executionArn=second["execution_arn"])["input"])["objects"] == [
        f"s3://{bucket}/orders/2026-12-01.csv"]
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 2
