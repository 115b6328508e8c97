"""The activate_segments Lambda on a lake on S3 (moto server: S3, Glue, EventBridge, SQS): the
commit event syncs once, and the journal it keeps on S3 makes a duplicate event send nothing; the
lake's lease it takes names its event, so a retry takes over what a killed attempt left."""

from __future__ import annotations

import json
import time
from typing import Any

import pyarrow as pa
import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from aws_lake import PREFIX, activation_events_queue, new_bucket
from rfmlake.activation.errors import ActivationError
from rfmlake.activation.lambda_event import handle_event, sync_owner
from rfmlake.lake import open_lake
from rfmlake.settings import Settings


def _pointer_event(bucket: str) -> dict:
    return {"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": bucket}, "object": {"key": "lake/gold/customer_rfm/_current"}}}


def _lake_on_s3(aws) -> tuple[str, Any, dict[str, str]]:  # noqa: ANN001
    """(bucket, lake, the function's environment): six customers (five consenting) scored in gold."""
    bucket = new_bucket(aws)
    lake_uri = f"s3://{bucket}/lake"
    aws.client("s3").put_object(Bucket=bucket, Key="config/settings.yaml", Body=f"prefix: {PREFIX}\n".encode())
    lake = open_lake(lake_uri, Settings(prefix=PREFIX), boto3_session=aws)
    write_customers(lake, 6, no_consent={0})
    write_rfm(lake, round_robin(6))
    lake.write_arrow("gold", "fct_orders", pa.table({"order_id": ["o1"], "customer_id": ["C000001"]}))
    return bucket, lake, {"RFMLAKE_LAKE": lake_uri, "RFMLAKE_CONFIG": f"s3://{bucket}/config/settings.yaml",
                          "RFMLAKE_ACTIVATION_DESTINATIONS": "eventbridge"}


def test_commit_event_syncs_once_with_the_journal_kept_on_s3(aws) -> None:
    bucket, lake, env = _lake_on_s3(aws)
    sqs, queue = aws.client("sqs"), activation_events_queue(aws)

    first = handle_event(_pointer_event(bucket), env, boto3_session=aws)
    assert first["status"] == "done" and first["reports"][0]["sent"] == 5  # five consenting customers
    # gold.customer_rfm and the customers were scanned on S3: no table reached the function's /tmp
    assert first["tables_copied"] == [] and first["bytes_copied"] < 10_000
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert len(received) == 5
    journal = [u for u in lake.storage.walk(lake.system_uri("activation"))]
    assert journal, "the sync state went back to S3"

    again = handle_event(_pointer_event(bucket), env, boto3_session=aws)  # a duplicated event
    assert again["reports"][0]["status"] == "up_to_date" and again["reports"][0]["sent"] == 0


def test_the_sync_s_lease_names_its_event_so_a_retry_takes_over_a_killed_attempt_s(aws) -> None:
    """The lake's lease (rfmlake.lake.locks) is taken for the event, as stages take it for their run:
    Lambda's retry of an event whose attempt was killed (a timeout) with the lease held takes it over
    at once and syncs; another event finds it held and is told for whom; the sync gives it back."""
    bucket, lake, env = _lake_on_s3(aws)
    event = {**_pointer_event(bucket), "id": "7bf73129-1428-4cd3-a780-95db273d1602"}
    owner = sync_owner(event)
    assert owner == "activation-7bf73129-1428-4cd3-a780-95db273d1602"
    assert sync_owner({**event, "id": None}) != sync_owner({**event, "id": None})  # no id: an owner of its own
    s3, key = aws.client("s3"), "lake/_system/run.lock"
    now = time.time()
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({  # what the killed attempt's lease holds
        "holder": "169.254.76.1:8", "token": "killed", "owner": owner, "acquired_at": now - 900,
        "expires_at": now + 3 * 3600}).encode())

    with pytest.raises(ActivationError, match=f"held by 169.254.76.1:8 for {owner} since"):
        handle_event({**event, "id": "another-event"}, env, boto3_session=aws)
    done = handle_event(event, env, boto3_session=aws)
    assert done["status"] == "done" and done["reports"][0]["sent"] == 5
    with pytest.raises(s3.exceptions.ClientError, match="404"):
        s3.head_object(Bucket=bucket, Key=key)  # given back
