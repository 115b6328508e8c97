"""Start the pipeline: the ONE entry point of every run on AWS. EventBridge delivers each S3
object-created event of the landing bucket, and each scheduled tick, to one SQS queue; the start Lambda
receives a batch (the queue's batching window is the debounce) and starts at most one execution for it.

One run at a time, by construction:
- A lease in DynamoDB (one item) is taken with a conditional write before StartExecution: of two
  triggers racing, exactly one write succeeds. The other fails its batch with PipelineBusy and SQS
  delivers it again after the visibility timeout, so files that land during a run start the next one.
- The state machine's first state checks that its execution holds the lease (a conditional update),
  so an execution started any other way stops before any stage; its last state (success or failure)
  gives the lease back.
- A lease whose execution ended without giving it back (stopped by hand) is taken over once Step
  Functions reports the execution is no longer running; a lease never outlives the state machine's
  timeout (`expires_at`), which bounds every execution.
- The execution name is derived from the batch, so a redelivered batch starts nothing twice: from each
  object's key and the upload the event reports (version id, sequencer, ETag), so duplicate
  notifications of one upload name the same execution, and the same key uploaded again, even on the
  same day after its run, names a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rfmlake.errors import ConfigError, PipelineError

if TYPE_CHECKING:
    import boto3


SCHEDULE_MESSAGE = {"trigger": "schedule"}  # what the schedule rule puts on the queue
# What an operator puts on the queue to start a run now (docs/deployment.md): one run per message,
# named by its SQS message id, so a redelivery of the message starts nothing twice.
MANUAL_MESSAGE = {"trigger": "manual"}
LEASE_KEY = "lease"          # the table's partition key
LEASE_ID = "pipeline"        # the one item: one pipeline per table
# A lease taken by a trigger that then died before StartExecution is free again after this long
# (longer than the start function's timeout).
START_GRACE_SECONDS = 300
RUN_TIMEOUT_SECONDS = 24 * 3600  # the state machine's TimeoutSeconds: no execution, and no lease, lives longer


class PipelineBusy(PipelineError):
    """An execution holds the run lease; the batch is retried later."""


def landed_objects(event: Mapping[str, Any]) -> list[str]:
    """s3://bucket/key of every object-created event in an SQS batch, sorted and deduplicated
    (scheduled ticks carry no object)."""
    return sorted({uri for uri, _upload in _landed(event)})


def landed_uploads(event: Mapping[str, Any]) -> list[str]:
    """Each upload of an SQS batch, sorted and deduplicated: `s3://bucket/key` and, after a space, the
    version id, sequencer and ETag the EventBridge event reports (any may be missing). Duplicate
    notifications of one upload give the same string; a new upload of the same key (a new version, a
    later sequencer, other content) gives another."""
    return sorted(f"{uri} {upload}".rstrip() for uri, upload in _landed(event))


def _landed(event: Mapping[str, Any]) -> set[tuple[str, str]]:
    records = event.get("Records")
    if not isinstance(records, list):
        raise ConfigError("not an SQS batch: the event has no Records list")
    uploads: set[tuple[str, str]] = set()
    for index, record in enumerate(records):
        try:
            body = json.loads(record["body"])
            if body in (SCHEDULE_MESSAGE, MANUAL_MESSAGE):
                continue
            detail = body["detail"]
            obj = detail["object"]
            etag = obj.get("etag") or obj.get("eTag")  # EventBridge spells it "etag", moto "eTag"
            upload = " ".join(f"{name}={value}" for name, value in (
                ("version", obj.get("version-id")), ("sequencer", obj.get("sequencer")), ("etag", etag)) if value)
            uploads.add((f"s3://{detail['bucket']['name']}/{obj['key']}", upload))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"record {index} is not an S3 object-created event from EventBridge ({exc})") from None
    return uploads


def execution_name(uploads: list[str], now: datetime | None = None) -> str:
    """`landing-<UTC date>-<hash of the uploads>` (landed_uploads): <= 80 characters, the same for
    the same uploads on one day."""
    digest = hashlib.sha256("\n".join(uploads).encode()).hexdigest()[:20]
    return f"landing-{(now or datetime.now(UTC)):%Y%m%d}-{digest}"


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:...:stateMachine:<machine> -> arn:...:execution:<machine>:<name>."""
    head, _, machine = state_machine_arn.rpartition(":stateMachine:")
    if not machine:
        raise ConfigError(f"{state_machine_arn!r} is not a state machine ARN")
    return f"{head}:execution:{machine}:{name}"


def start_from_landing(event: Mapping[str, Any], state_machine_arn: str, lease_table: str, *,
                       now: datetime | None = None, boto3_session: boto3.Session | None = None) -> dict[str, Any]:
    """Start one execution for a batch of landed objects and scheduled ticks, if no run holds the lease.
    Returns what happened; raises PipelineBusy (the batch is redelivered) while another run holds it."""
    import boto3 as _boto3

    uploads, objects = landed_uploads(event), landed_objects(event)
    scheduled = any(_is_message(record, SCHEDULE_MESSAGE) for record in event["Records"])
    requests = manual_requests(event)
    if not objects and not scheduled and not requests:
        return {"started": False, "objects": 0}
    now = now or datetime.now(UTC)
    # A manual request names a run of its own; a scheduled tick one per day (its run, if any, is that day's).
    trigger = "landing" if objects else "manual" if requests else "schedule"
    name = execution_name([*uploads, *requests] or ["schedule"], now).replace("landing-", f"{trigger}-", 1)
    session = boto3_session or _boto3.Session()
    lease = RunLease(lease_table, state_machine_arn, session)
    if not lease.acquire(name, now):
        return {"started": False, "execution_name": name, "objects": len(objects), "reason": "already running"}
    payload = json.dumps({"trigger": trigger, "objects": objects[:100],
                          "object_count": len(objects)})
    client = session.client("stepfunctions")
    try:
        response = client.start_execution(stateMachineArn=state_machine_arn, name=name, input=payload)
    except client.exceptions.ExecutionAlreadyExists:
        lease.release(name)  # this batch already ran (a redelivery after its run ended): nothing to do
        return {"started": False, "execution_name": name, "objects": len(objects), "reason": "already ran"}
    except Exception:
        lease.release(name)
        raise
    return {"started": True, "execution_name": name, "execution_arn": response["executionArn"],
            "objects": len(objects)}


class RunLease:
    """The run lease: one DynamoDB item naming the execution that may run."""

    def __init__(self, table: str, state_machine_arn: str, session: boto3.Session) -> None:
        self.table = table
        self.state_machine_arn = state_machine_arn
        self.dynamodb = session.client("dynamodb")
        self.stepfunctions = session.client("stepfunctions")

    def acquire(self, name: str, now: datetime) -> bool:
        """True when `name` now holds the lease (to start it); False when `name` holds it and is running
        (a redelivered batch: nothing to start). Raises PipelineBusy when another execution holds it."""
        item = {LEASE_KEY: {"S": LEASE_ID}, "execution": {"S": name}, "acquired_at": {"N": str(int(now.timestamp()))},
                "expires_at": {"N": str(int(now.timestamp()) + RUN_TIMEOUT_SECONDS + START_GRACE_SECONDS)}}
        if self._put(item, "attribute_not_exists(#k) OR expires_at < :now",
                     {":now": {"N": str(int(now.timestamp()))}}):
            return True
        holder = self.dynamodb.get_item(TableName=self.table, Key={LEASE_KEY: {"S": LEASE_ID}},
                                        ConsistentRead=True).get("Item")
        if holder is None:  # given back between our write and our read: try once more
            if self._put(item, "attribute_not_exists(#k)", None):
                return True
            raise PipelineBusy("another trigger took the run lease at the same moment; this batch is retried")
        held_by = holder["execution"]["S"]
        status = self._status(held_by)
        if status == "RUNNING":
            if held_by == name:
                return False
            raise PipelineBusy(f"execution {held_by} is running; this batch starts the next run when SQS "
                               "delivers it again")
        starting = now.timestamp() - int(holder["acquired_at"]["N"]) < START_GRACE_SECONDS
        if status is None and held_by != name and starting:
            raise PipelineBusy(f"execution {held_by} is being started; this batch is retried")
        # The holder ended without giving the lease back (stopped, or never started): take it over.
        if self._put(item, "execution = :holder", {":holder": {"S": held_by}}):
            return True
        raise PipelineBusy("another trigger took the run lease at the same moment; this batch is retried")

    def release(self, name: str) -> None:
        """Give the lease back if `name` still holds it (what the state machine's last state does)."""
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
            self.dynamodb.delete_item(TableName=self.table, Key={LEASE_KEY: {"S": LEASE_ID}},
                                      ConditionExpression="execution = :me",
                                      ExpressionAttributeValues={":me": {"S": name}})

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None) -> bool:
        params: dict[str, Any] = {"TableName": self.table, "Item": item, "ConditionExpression": condition}
        if "#k" in condition:
            params["ExpressionAttributeNames"] = {"#k": LEASE_KEY}
        if values:
            params["ExpressionAttributeValues"] = values
        try:
            self.dynamodb.put_item(**params)
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _status(self, name: str) -> str | None:
        """The execution's status, or None when it does not exist (yet)."""
        try:
            arn = execution_arn(self.state_machine_arn, name)
            return str(self.stepfunctions.describe_execution(executionArn=arn)["status"])
        except self.stepfunctions.exceptions.ExecutionDoesNotExist:
            return None


def manual_requests(event: Mapping[str, Any]) -> list[str]:
    """`manual <SQS message id>` of each manual run request in the batch, sorted (a message SQS
    delivers again has the same id)."""
    requests = []
    for index, record in enumerate(event["Records"]):
        if _is_message(record, MANUAL_MESSAGE):
            message_id = record.get("messageId")
            if not isinstance(message_id, str) or not message_id:
                raise ConfigError(f"record {index} asks for a run by hand but has no SQS messageId to name it by")
            requests.append(f"manual {message_id}")
    return sorted(set(requests))


def _is_message(record: Mapping[str, Any], message: Mapping[str, Any]) -> bool:
    try:
        return bool(json.loads(record["body"]) == message)
    except (KeyError, TypeError, json.JSONDecodeError):
        return False
