"""Locks: a non-blocking exclusive file lock, and the one lock per lake that pipeline runs, stages,
activation syncs and erasures take (a second holder fails fast with the caller's error).

A local lake's lock is an flock on `_system/run.lock`: it dies with the process, so a crashed
holder never leaves it stuck. A lake on S3 has no flock: its lock is the object
`_system/run.lock`, created with a conditional PUT (`If-None-Match: *`, which S3 grants to one
writer only) and deleted by its holder. It is a lease: a holder killed without deleting it (a Lambda
timeout) blocks the lake until the lease ends (`S3_LEASE_SECONDS`), after which the next taker
replaces it; the busy message names the object and its holder, for an operator who knows it is gone.
A lease taken for a run (`owner`: the run id, the Step Functions execution name) is taken over at
once by a later stage or attempt of the same run: the state machine's retry of a stage killed by
its timeout must not wait hours for its own dead attempt (one run at a time is the run lease's job,
rfmlake.pipeline.trigger).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rfmlake.lake.tables import Lake

LOCK_NAME = "run.lock"  # under the lake's _system/
# Longer than any stage may run (Lambda 15 min; the Glue and SageMaker jobs' timeouts in infra/).
S3_LEASE_SECONDS = 4 * 3600


@contextmanager
def exclusive_lock(path: Path, busy: Exception) -> Iterator[None]:
    """Hold an flock on `path` (created if absent) for the block; raise `busy` if someone holds it.
    The lock dies with the process, so a crashed holder never leaves it stuck."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lake_lock(lake: Lake, busy: Exception, *, lease_seconds: float = S3_LEASE_SECONDS,
              owner: str | None = None) -> AbstractContextManager[None]:
    """The one lock per lake that pipeline runs, stages, activation syncs and erasures take: none
    may see another half done. `owner` (S3 only): the run the lease is taken for; a lease held for
    the same run is taken over (a retried or later stage of that run)."""
    if lake.is_local:
        return exclusive_lock(lake.system_dir / LOCK_NAME, busy)
    return _s3_lease(lake, busy, lease_seconds, owner)


def _s3_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


@contextmanager
def _s3_lease(lake: Lake, busy: Exception, lease_seconds: float, owner: str | None) -> Iterator[None]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from rfmlake.lake.storage import StorageError

    bucket, _, key = lake.system_uri(LOCK_NAME).removeprefix("s3://").partition("/")
    client: Any = (lake.boto3_session or boto3.Session()).client("s3")
    token = uuid.uuid4().hex
    now = time.time()
    body = json.dumps({"holder": f"{socket.gethostname()}:{os.getpid()}", "token": token, "owner": owner,
                       "acquired_at": now, "expires_at": now + lease_seconds}).encode()
    try:
        for attempt in range(2):
            try:
                client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
                break
            except ClientError as exc:
                if _s3_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict", "412"):
                    raise
            try:
                held = client.get_object(Bucket=bucket, Key=key)
            except ClientError as exc:
                if attempt == 0 and _s3_code(exc) in ("NoSuchKey", "404"):
                    continue  # given back between our PUT and this read: try again
                raise
            holder = json.loads(held["Body"].read() or b"{}")
            expired = float(holder.get("expires_at", 0)) < time.time()
            same_run = owner is not None and holder.get("owner") == owner
            if attempt == 0 and (expired or same_run):
                # An expired lease (its holder died), or one of this run's own earlier stages or
                # attempts: replace it, only if it is still that one.
                client.delete_object(Bucket=bucket, Key=key, IfMatch=held["ETag"])
                continue
            taker = f" for {holder['owner']}" if holder.get("owner") else ""
            raise type(busy)(f"{busy} (lock s3://{bucket}/{key} held by {holder.get('holder', '?')}{taker} since "
                             f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(float(holder.get('acquired_at', 0))))}"
                             "; if that process is gone, delete the object)") from None
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot take the lake lock s3://{bucket}/{key}: {exc}") from None
    try:
        yield
    finally:
        try:
            held = client.get_object(Bucket=bucket, Key=key)
            if json.loads(held["Body"].read() or b"{}").get("token") == token:
                client.delete_object(Bucket=bucket, Key=key, IfMatch=held["ETag"])
        except ClientError as exc:
            if _s3_code(exc) not in ("NoSuchKey", "404"):
                raise
