"""Start the pipeline when landing files arrive or the schedule fires. EventBridge delivers each S3
object-created event, and each scheduled tick, to an SQS queue; the start Lambda receives a batch
(the queue's batching window is the debounce) and starts ONE execution for all of it. The execution
name is derived from the batch, so a redelivered batch starts nothing twice (StartExecution with an
existing name and input is idempotent).

Runs never overlap: while an execution is running the Lambda fails the batch with PipelineBusy, and
SQS delivers it again after the visibility timeout, so files that land during a run start the next
one (messages wait up to the queue's retention period)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rfmlake.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    import boto3


SCHEDULE_MESSAGE = {"trigger": "schedule"}  # what the schedule rule puts on the queue


class PipelineBusy(PipelineError):
    """An execution is running; the batch is retried later."""


def landed_objects(event: Mapping[str, Any]) -> list[str]:
    """s3://bucket/key of every object-created event in an SQS batch, sorted and deduplicated
    (scheduled ticks carry no object)."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise ConfigError("not an SQS batch: the event has no Records list")
    objects: set[str] = set()
    for index, record in enumerate(records):
        try:
            body = json.loads(record["body"])
            if body == SCHEDULE_MESSAGE:
                continue
            detail = body["detail"]
            objects.add(f"s3://{detail['bucket']['name']}/{detail['object']['key']}")
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"record {index} is not an S3 object-created event from EventBridge ({exc})") from None
    return sorted(objects)


def execution_name(objects: list[str], now: datetime | None = None) -> str:
    """`landing-<UTC date>-<hash of the objects>`: <= 80 characters, the same for the same batch on one day."""
    digest = hashlib.sha256("\n".join(objects).encode()).hexdigest()[:20]
    return f"landing-{(now or datetime.now(UTC)):%Y%m%d}-{digest}"


def start_from_landing(event: Mapping[str, Any], state_machine_arn: str, *, now: datetime | None = None,
                       boto3_session: boto3.Session | None = None) -> dict[str, Any]:
    """Start one execution for a batch of landed objects; returns its name, ARN and the object count."""
    import boto3 as _boto3

    objects = landed_objects(event)
    scheduled = any(_is_schedule(record) for record in event["Records"])
    if not objects and not scheduled:
        return {"started": False, "objects": 0}
    client = (boto3_session or _boto3.Session()).client("stepfunctions")
    running = client.list_executions(stateMachineArn=state_machine_arn, statusFilter="RUNNING", maxResults=1)
    if running.get("executions"):
        raise PipelineBusy(f"execution {running['executions'][0]['name']} is running; this batch of "
                           f"{len(objects)} object(s) starts the next run when SQS delivers it again")
    name = execution_name(objects or ["schedule"], now)
    if not objects:
        name = name.replace("landing-", "schedule-", 1)
    payload = json.dumps({"trigger": "landing" if objects else "schedule", "objects": objects[:100],
                          "object_count": len(objects)})
    response = client.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
    return {"started": True, "execution_name": name, "execution_arn": response["executionArn"],
            "objects": len(objects)}


def _is_schedule(record: Mapping[str, Any]) -> bool:
    try:
        return bool(json.loads(record["body"]) == SCHEDULE_MESSAGE)
    except (KeyError, TypeError, json.JSONDecodeError):
        return False
