"""The outbox (the local default for journey messages): every message a journey sends is written
as one JSON line, with the rendered content and the address, under
`<lake>/gold/_journeys/outbox/<as_of>/<channel>/batch-<id>.jsonl`.

A batch's file is named by the message ids it holds and replaced atomically, so a batch replayed
after a crash overwrites itself: each message is in the outbox exactly once. Files are written
through the lake's storage, so an outbox on S3 is written in place. The files hold addresses:
like the activation exports, the folder belongs to the sending stage only, and `rfmlake erase`
cleans it (docs/journeys.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.model import Change, RecordFailure
from rfmlake.lake.storage import Storage

OUTBOX = "gold/_journeys/outbox"  # relative to the lake


class OutboxDestination(Destination):
    replay_safe = True
    sends_messages = True

    def __init__(self, location: str, *, name: str = "outbox", batch_size: int = 500) -> None:
        self.name = name
        self.channel = "any"
        self.batch_size = batch_size
        self.location = Storage.normalize(location)
        self.storage = Storage.for_location(self.location)
        self._session: SyncSession | None = None

    def open(self, session: SyncSession) -> None:
        self._session = session

    @staticmethod
    def row(change: Change, sent_at: str) -> dict[str, Any]:
        message = change.message
        if message is None:
            raise ValueError(f"the outbox sends journey messages, not {change.kind!r} changes")
        row: dict[str, Any] = {
            "message_id": message.message_id, "journey_id": message.journey_id, "step_id": message.step_id,
            "variant": message.variant, "channel": message.channel, "customer_id": change.customer_id,
            "segment": change.segment, "sent_at": sent_at,
        }
        if message.channel == "email" or message.call_channel == "email":
            row["email"] = change.email
        if message.channel == "sms" or message.call_channel in ("telephony", "sms"):
            row["phone"] = change.phone
        for key in ("subject", "text", "html", "template", "campaign_id", "call_channel", "template_arn",
                    "detail_type"):
            value = getattr(message, key)
            if value is not None:
                row[key] = value
        if message.attributes:
            row["attributes"] = message.attributes
        return row

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        if self._session is None:
            raise RuntimeError("OutboxDestination.send before open")
        if not batch:
            return []
        sent_at = datetime.now(UTC).isoformat()
        failures: list[RecordFailure] = []
        by_channel: dict[str, list[dict[str, Any]]] = {}
        for change in batch:
            message = change.message
            if message is None:
                failures.append(RecordFailure(change.customer_id, f"not a journey message ({change.kind})"))
                continue
            address_needed = {"email": change.email, "sms": change.phone}.get(message.channel, "n/a")
            if address_needed is None:
                failures.append(RecordFailure(change.customer_id, f"no address for {message.channel}"))
                continue
            by_channel.setdefault(message.channel, []).append(self.row(change, sent_at))
        for channel, rows in by_channel.items():
            ids = "\n".join(r["message_id"] for r in rows)
            name = f"batch-{hashlib.sha256(ids.encode()).hexdigest()[:20]}.jsonl"
            uri = Storage.join(self.location, self._session.as_of or "unknown", channel, name)
            body = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in rows)
            self.storage.write_bytes(uri, body.encode("utf-8"))
        return failures


def read_outbox(location: str) -> list[dict[str, Any]]:
    """Every message in an outbox (tests, `rfmlake journeys report`)."""
    storage = Storage.for_location(location)
    rows: list[dict[str, Any]] = []
    for uri in storage.walk(Storage.normalize(location)):
        if uri.endswith(".jsonl") and "/batch-" in uri:
            rows.extend(json.loads(line) for line in (storage.read_bytes(uri) or b"").decode().splitlines() if line)
    return rows
