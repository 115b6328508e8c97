"""The debounced landing trigger: one execution per SQS batch, idempotent by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from rfmlake.errors import ConfigError
from rfmlake.pipeline.remote import find_stage, handle_event
from rfmlake.pipeline.trigger import (
    SCHEDULE_MESSAGE,
    PipelineBusy,
    execution_name,
    landed_objects,
    start_from_landing,
)

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:rfmlake-dev-pipeline"
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def batch(*keys: str) -> dict:
    return {"Records": [{"body": json.dumps({"detail": {"bucket": {"name": "landing"}, "object": {"key": k}}})}
                        for k in keys]}


def test_one_execution_for_a_batch_named_by_its_objects() -> None:
    session = boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    client = session.client("stepfunctions")
    event = batch("orders/b.csv", "orders/a.csv", "orders/a.csv")
    name = execution_name(["s3://landing/orders/a.csv", "s3://landing/orders/b.csv"], NOW)
    with Stubber(client) as stub:
        stub.add_response("list_executions", {"executions": []},
                          {"stateMachineArn": ARN, "statusFilter": "RUNNING", "maxResults": 1})
        stub.add_response("start_execution", {"executionArn": ARN + ":" + name, "startDate": NOW},
                          {"stateMachineArn": ARN, "name": name, "input": json.dumps({
                              "trigger": "landing", "objects": ["s3://landing/orders/a.csv", "s3://landing/orders/b.csv"],
                              "object_count": 2})})

        class Session:
            def client(self, service: str) -> object:
                return client

        result = start_from_landing(event, ARN, now=NOW, boto3_session=Session())  # type: ignore[arg-type]
    assert result["started"] and result["objects"] == 2 and result["execution_name"] == name
    assert len(name) <= 80 and name == execution_name(["s3://landing/orders/a.csv", "s3://landing/orders/b.csv"], NOW)


class _Session:
    def __init__(self, client: object) -> None:
        self._client = client

    def client(self, service: str) -> object:
        return self._client


def test_a_running_execution_defers_the_batch_for_redelivery() -> None:
    client = boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x").client(
        "stepfunctions")
    running = {"executionArn": ARN.replace("stateMachine", "execution") + ":landing-1", "stateMachineArn": ARN,
               "name": "landing-1", "status": "RUNNING", "startDate": NOW}
    with Stubber(client) as stub:
        stub.add_response("list_executions", {"executions": [running]},
                          {"stateMachineArn": ARN, "statusFilter": "RUNNING", "maxResults": 1})
        with pytest.raises(PipelineBusy, match="execution landing-1 is running; this batch of 1 object"):
            start_from_landing(batch("orders/a.csv"), ARN, now=NOW, boto3_session=_Session(client))  # type: ignore[arg-type]
        stub.assert_no_pending_responses()


def test_a_scheduled_tick_starts_a_schedule_execution() -> None:
    client = boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x").client(
        "stepfunctions")
    name = execution_name(["schedule"], NOW).replace("landing-", "schedule-")
    with Stubber(client) as stub:
        stub.add_response("list_executions", {"executions": []},
                          {"stateMachineArn": ARN, "statusFilter": "RUNNING", "maxResults": 1})
        stub.add_response("start_execution", {"executionArn": ARN + ":" + name, "startDate": NOW},
                          {"stateMachineArn": ARN, "name": name,
                           "input": json.dumps({"trigger": "schedule", "objects": [], "object_count": 0})})
        event = {"Records": [{"body": json.dumps(SCHEDULE_MESSAGE)}]}
        result = start_from_landing(event, ARN, now=NOW, boto3_session=_Session(client))  # type: ignore[arg-type]
    assert result["started"] and result["execution_name"].startswith("schedule-20260501-")


def test_a_record_that_is_not_an_s3_event_is_named() -> None:
    with pytest.raises(ConfigError, match="record 1 is not an S3 object-created event"):
        landed_objects({"Records": [batch("a")["Records"][0], {"body": "{}"}]})
    with pytest.raises(ConfigError, match="no Records"):
        landed_objects({})


def test_stage_runner_refuses_unknown_stages_and_missing_lake() -> None:
    assert find_stage("dbt_build").runtime == "dbt"
    with pytest.raises(ConfigError, match="unknown pipeline stage 'nope'"):
        find_stage("nope")
    with pytest.raises(ConfigError, match="RFMLAKE_LAKE is not set"):
        handle_event({"stage": "quality_silver"}, env={})
    with pytest.raises(ConfigError, match="string 'stage'"):
        handle_event({}, env={"RFMLAKE_LAKE": "/x"})
