"""The activate_segments Lambda on a lake on S3 (moto server: S3, Glue, EventBridge, SQS): the
commit event syncs once, and the journal it keeps on S3 makes a duplicate event send nothing."""

from __future__ import annotations

import pyarrow as pa

from activation_lakes import round_robin, write_customers, write_rfm
from aws_lake import PREFIX, activation_events_queue, new_bucket
from rfmlake.activation.lambda_event import handle_event
from rfmlake.lake import open_lake
from rfmlake.settings import Settings


def _pointer_event(bucket: str) -> dict:
    return {"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": bucket}, "object": {"key": "lake/gold/customer_rfm/_current"}}}


def test_commit_event_syncs_once_with_the_journal_kept_on_s3(aws) -> None:
    bucket = new_bucket(aws)
    lake_uri = f"s3://{bucket}/lake"
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key="config/settings.yaml", Body=f"prefix: {PREFIX}\n".encode())
    lake = open_lake(lake_uri, Settings(prefix=PREFIX), boto3_session=aws)
    write_customers(lake, 6, no_consent={0})
    write_rfm(lake, round_robin(6))
    lake.write_arrow("gold", "fct_orders", pa.table({"order_id": ["o1"], "customer_id": ["C000001"]}))
    sqs, queue = aws.client("sqs"), activation_events_queue(aws)
    env = {"RFMLAKE_LAKE": lake_uri, "RFMLAKE_CONFIG": f"s3://{bucket}/config/settings.yaml",
           "RFMLAKE_ACTIVATION_DESTINATIONS": "eventbridge"}

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
