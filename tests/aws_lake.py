"""A moto server on localhost serving S3 and Glue, and an S3 lake on it: what the AWS runtime's
lake looks like, for tests of the S3 backend (rfmlake.lake.storage, rfmlake.lake.glue)."""

from __future__ import annotations

import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

REGION = "eu-west-1"
PREFIX = "rfmtest"  # settings prefix: Glue databases rfmtest_bronze/_silver/_gold


@contextmanager
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def aws_env(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> boto3.Session:
    """Point boto3, pyarrow and DuckDB at the moto server for one test; returns a session."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    return boto3.Session(region_name=REGION)


def new_bucket(session: boto3.Session, *, glue_prefix: str | None = PREFIX) -> str:
    """A fresh bucket (and the Glue databases the catalog stack would create); returns its name."""
    name = f"lake-{uuid.uuid4().hex[:12]}"
    session.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    if glue_prefix:
        glue = session.client("glue")
        for zone in ("bronze", "silver", "gold"):
            glue.create_database(DatabaseInput={"Name": f"{glue_prefix}_{zone}"})
    return name


def upload_folder(session: boto3.Session, folder: Path, location: str) -> str:
    """Put every file under a local folder below an s3://bucket/prefix, as `aws s3 sync` does (no
    folder marker objects); returns the location."""
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    client = session.client("s3")
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = "/".join(part for part in (prefix.strip("/"), path.relative_to(folder).as_posix()) if part)
        client.upload_file(str(path), bucket, key)
    return location


def activation_events_queue(session: boto3.Session, *, bus: str = "default", endpoint_url: str | None = None) -> str:
    """An SQS queue that an EventBridge rule on `bus` fills with the events activation sends (source
    rfmlake.activation), so a test can read back what was delivered; returns the queue URL."""
    events = session.client("events", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    if bus != "default":
        events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"q-{bus}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=f"r-{bus}", EventBusName=bus, EventPattern=json.dumps({"source": ["rfmlake.activation"]}))
    events.put_targets(Rule=f"r-{bus}", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return queue_url
