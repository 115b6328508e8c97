"""The Lambda's work, kept out of lambdas/ so it is tested like any package code."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rfmlake.activation.config import lake_from_env
from rfmlake.activation.errors import ActivationError
from rfmlake.lake import open_lake
from rfmlake.lake.locks import lake_lock
from rfmlake.lake.workspace import workspace
from rfmlake.pipeline.remote import find_stage
from rfmlake.settings import load_settings

if TYPE_CHECKING:
    import boto3

GOLD_TABLE_MARKER = "/gold/customer_rfm/"


def new_gold_version(event: Mapping[str, Any]) -> str | None:
    """The gold.customer_rfm version named by an EventBridge 'Object Created' event, or None when the
    object is not part of that table (other tables, the pointer's temp files)."""
    if event.get("source") != "aws.s3" or event.get("detail-type") != "Object Created":
        raise ActivationError(f"not an S3 Object Created event: source={event.get('source')!r} "
                              f"detail-type={event.get('detail-type')!r}")
    key = str(event.get("detail", {}).get("object", {}).get("key", ""))
    if not key:
        raise ActivationError("S3 event without detail.object.key")
    marker = key.find(GOLD_TABLE_MARKER)
    if marker < 0:
        return None
    rest = key[marker + len(GOLD_TABLE_MARKER):]
    if rest == "_current":
        return "_current"
    parts = rest.split("/")
    return parts[1] if len(parts) >= 3 and parts[0] == "versions" else None


def sync_owner(event: Mapping[str, Any]) -> str:
    """Whom the lake's lease is taken for (rfmlake.lake.locks), as every stage takes it for its run:
    this event's sync, by the EventBridge event id, which Lambda's retries of the event keep. A retry
    after a killed attempt (a timeout) takes over the lease that attempt left, instead of waiting
    hours for it; another event's sync, a stage or an erasure finds the lease held and named. An event
    without an id gets an owner of its own."""
    event_id = event.get("id")
    if isinstance(event_id, str) and re.fullmatch(r"[A-Za-z0-9-]{1,128}", event_id):
        return f"activation-{event_id}"
    return f"activation-{uuid.uuid4()}"


def handle_event(event: Mapping[str, Any], env: Mapping[str, str] | None = None,
                 boto3_session: boto3.Session | None = None) -> dict[str, Any]:
    from rfmlake.activation.run import activate

    env = os.environ if env is None else env
    version = new_gold_version(event)
    if version is None:
        return {"status": "ignored", "reason": "object is not part of gold.customer_rfm"}
    lake = open_lake(lake_from_env(env), load_settings(env.get("RFMLAKE_CONFIG")), boto3_session=boto3_session)
    ref = lake.current("gold", "customer_rfm")
    if ref is None:
        raise ActivationError(f"gold.customer_rfm does not exist in the lake at {lake}")
    if version != "_current" and version != ref.version:
        # A version file landed but is not committed (yet): the commit's own event triggers the sync.
        return {"status": "ignored", "reason": "version not committed", "gold_version": ref.version}
    # On S3: the activate stage's journal in a local workspace, its tables read in place (DuckDB on
    # S3, nothing copied); the journal and the file exports are published after.
    # Under the lake's lock, as every stage and erasure: an erasure never runs while this sync has
    # its journal out of the lake (it would be pushed back over the erasure's changes).
    stage = find_stage("activate")
    with lake_lock(lake, ActivationError(f"a pipeline stage or erasure is using the lake at {lake}; the next "
                                         "commit's event syncs again"), owner=sync_owner(event)), \
            workspace(lake, reads=stage.reads, writes=stage.writes, exports=stage.exports,
                      state=stage.state, in_place=stage.reads_in_place) as (local, sync):
        reports = activate(local, env=env, boto3_session=boto3_session)
    return {"status": "done", "gold_version": ref.version, "reports": [r.to_dict() for r in reports],
            "tables_copied": sorted(sync.pulled), "bytes_copied": sync.bytes_down}
