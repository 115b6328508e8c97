"""The one trigger: one execution per SQS batch, idempotent by name, only with the run lease
(the races and takeovers run against moto in tests/functional/infra/test_one_run_at_a_time.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from rfmlake.errors import ConfigError
from rfmlake.pipeline.context import check_run_id, run_time_key
from rfmlake.pipeline.remote import find_stage, handle_event
from rfmlake.pipeline.trigger import (
    MANUAL_MESSAGE,
    SCHEDULE_MESSAGE,
    execution_arn,
    execution_name,
    landed_objects,
    landed_uploads,
    manual_requests,
    start_from_landing,
)

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:rfmlake-dev-pipeline"
NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def batch(*keys: str) -> dict:
    return {"Records": [{"body": json.dumps({"detail": {"bucket": {"name": "landing"}, "object": {"key": k}}})}
                        for k in keys]}


class _Session:
    def __init__(self, **clients: object) -> None:
        self._clients = clients

    def client(self, service: str) -> object:
        return self._clients[service]


def _client(service: str):  # noqa: ANN202 - a botocore client
    return boto3.Session(region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x").client(service)


def test_one_execution_for_a_batch_named_by_its_objects_once_the_lease_is_taken() -> None:
    """The requests, as botocore's models validate them: the conditional lease write, then the start."""
    dynamodb, sfn = _client("dynamodb"), _client("stepfunctions")
    event = batch("orders/b.csv", "orders/a.csv", "orders/a.csv")
    objects = ["s3://landing/orders/a.csv", "s3://landing/orders/b.csv"]
    name = execution_name(objects, NOW)
    now = str(int(NOW.timestamp()))
    with Stubber(dynamodb) as db, Stubber(sfn) as stub:
        db.add_response("put_item", {}, {
            "TableName": "lease", "ConditionExpression": "attribute_not_exists(#k) OR expires_at < :now",
            "ExpressionAttributeNames": {"#k": "lease"}, "ExpressionAttributeValues": {":now": {"N": now}},
            "Item": {"lease": {"S": "pipeline"}, "execution": {"S": name}, "acquired_at": {"N": now},
                     "expires_at": {"N": str(int(NOW.timestamp()) + 24 * 3600 + 300)}}})
        stub.add_response("start_execution", {"executionArn": ARN + ":" + name, "startDate": NOW},
                          {"stateMachineArn": ARN, "name": name, "input": json.dumps({
                              "trigger": "landing", "objects": objects, "object_count": 2})})
        result = start_from_landing(event, ARN, "lease", now=NOW,
                                    boto3_session=_Session(dynamodb=dynamodb, stepfunctions=sfn))  # type: ignore[arg-type]
        db.assert_no_pending_responses()
        stub.assert_no_pending_responses()
    assert result["started"] and result["objects"] == 2 and result["execution_name"] == name
    assert len(name) <= 80
    assert execution_arn(ARN, name) == f"arn:aws:states:eu-west-1:123456789012:execution:rfmlake-dev-pipeline:{name}"


def test_a_batch_without_objects_or_ticks_starts_nothing() -> None:
    assert start_from_landing({"Records": []}, ARN, "lease", now=NOW) == {"started": False, "objects": 0}
    assert SCHEDULE_MESSAGE == {"trigger": "schedule"}


def test_a_record_that_is_not_an_s3_event_is_named() -> None:
    with pytest.raises(ConfigError, match="record 1 is not an S3 object-created event"):
        landed_objects({"Records": [batch("a")["Records"][0], {"body": "{}"}]})
    with pytest.raises(ConfigError, match="no Records"):
        landed_objects({})


def test_the_name_tells_uploads_of_one_key_apart_and_duplicate_notifications_not() -> None:
    """EventBridge's S3 event (detail.object: etag, version-id, sequencer): a new upload of a key names a
    new execution, the same upload notified twice the same one."""
    def created(version: str, sequencer: str, etag: str) -> dict:
        return {"body": json.dumps({"detail": {"bucket": {"name": "landing"}, "object": {
            "key": "orders/a.csv", "size": 10, "etag": etag, "version-id": version, "sequencer": sequencer}}})}

    first, duplicate = created("v1", "0062E99A88DC407460", "e1"), created("v1", "0062E99A88DC407460", "e1")
    again = created("v2", "0062E99A88DC407499", "e1")  # the same bytes uploaded again: a new version
    assert landed_uploads({"Records": [first, duplicate]}) == [
        "s3://landing/orders/a.csv version=v1 sequencer=0062E99A88DC407460 etag=e1"]
    assert execution_name(landed_uploads({"Records": [first]}), NOW) == execution_name(
        landed_uploads({"Records": [duplicate, first]}), NOW)
    assert execution_name(landed_uploads({"Records": [again]}), NOW) != execution_name(
        landed_uploads({"Records": [first]}), NOW)
    assert landed_objects({"Records": [first, again]}) == ["s3://landing/orders/a.csv"]


def _manual(message_id: str | None) -> dict:
    record = {"body": json.dumps(MANUAL_MESSAGE)}
    return {**record, "messageId": message_id} if message_id is not None else record


def test_a_manual_request_names_a_run_of_its_own_which_its_redelivery_names_again() -> None:
    """{"trigger": "manual"} starts a run whenever it is sent (the day's schedule run may have run
    already): named by its SQS message id, so SQS delivering it twice starts one run."""
    dynamodb, sfn = _client("dynamodb"), _client("stepfunctions")
    event = {"Records": [_manual("059f36b4-87a3-44ab-83d2-661975830a7d")]}
    (request,) = manual_requests(event)
    name = execution_name([request], NOW).replace("landing-", "manual-", 1)
    assert name.startswith("manual-20260501-") and check_run_id(name) == name and run_time_key(name) == "20260501"
    with Stubber(dynamodb) as db, Stubber(sfn) as stub:
        db.add_response("put_item", {})
        stub.add_response("start_execution", {"executionArn": ARN + ":" + name, "startDate": NOW},
                          {"stateMachineArn": ARN, "name": name, "input": json.dumps({
                              "trigger": "manual", "objects": [], "object_count": 0})})
        result = start_from_landing(event, ARN, "lease", now=NOW,
                                    boto3_session=_Session(dynamodb=dynamodb, stepfunctions=sfn))  # type: ignore[arg-type]
        stub.assert_no_pending_responses()
    assert result["started"] and result["execution_name"] == name
    other = {"Records": [_manual("7d0a4a2c-5c36-4d8e-9a40-0b3c2f1e9d11")]}
    assert manual_requests(other) != manual_requests(event)  # another message: another run
    assert manual_requests({"Records": [_manual("059f36b4-87a3-44ab-83d2-661975830a7d")] * 2}) == [request]
    with pytest.raises(ConfigError, match="record 0 asks for a run by hand but has no SQS messageId"):
        manual_requests({"Records": [_manual(None)]})


def test_stage_runner_refuses_unknown_stages_and_missing_lake() -> None:
    assert find_stage("dbt_build").runtime == "dbt"
    with pytest.raises(ConfigError, match="unknown pipeline stage 'nope'"):
        find_stage("nope")
    with pytest.raises(ConfigError, match="RFMLAKE_LAKE is not set"):
        handle_event({"stage": "quality_silver"}, env={})
    with pytest.raises(ConfigError, match="string 'stage'"):
        handle_event({}, env={"RFMLAKE_LAKE": "/x"})
