"""Amazon EventBridge: one `SegmentEntered` / `SegmentExited` event per customer and segment.

PutEvents takes at most 10 entries per call and reports failures per entry (FailedEntryCount):
entries that failed with throttling or an internal error are retried, others are dead-lettered.
Events carry no address (consumers look the customer up by id) and a deterministic `event_id`
(sync id, kind, customer, segment), so a batch replayed after a crash can be deduplicated downstream.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin, dumps, rfm_detail
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.errors import PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure
from rfmlake.activation.retry import is_retryable_code

if TYPE_CHECKING:
    import boto3

PUT_EVENTS_MAX_ENTRIES = 10
EVENT_SOURCE = "rfmlake.activation"


class EventBridgeDestination(AwsClientMixin, Destination):
    service = "events"
    sends_messages = True  # a journey's event step (rfmlake.journeys)

    def __init__(self, name: str = "eventbridge", *, event_bus: str = "default", source: str = EVENT_SOURCE,
                 batch_size: int = 100, boto3_session: boto3.Session | None = None,
                 endpoint_url: str | None = None, client: Any | None = None) -> None:
        self.name = name
        self.channel = "none"  # consent is still required; no address travels in events
        self.batch_size = batch_size
        self.event_bus = event_bus
        self.source = source
        self._session: SyncSession | None = None
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    def open(self, session: SyncSession) -> None:
        self._session = session

    def entries(self, change: Change) -> list[dict[str, Any]]:
        assert self._session is not None
        if change.kind == "message":
            return [self._message_entry(change)]
        base = {"customer_id": change.customer_id, "gold_version": self._session.gold_version,
                "as_of": self._session.as_of, "sync_id": self._session.sync_id}
        events: list[tuple[str, str, dict[str, Any]]] = []
        if change.kind == "exited":
            events.append(("SegmentExited", change.segment, {}))
        else:
            if change.previous_segment:
                events.append(("SegmentExited", change.previous_segment, {"next_segment": change.segment}))
            kind = "SegmentUpdated" if change.kind == "changed" else "SegmentEntered"
            events.append((kind, change.segment, {"previous_segment": change.previous_segment,
                                                  "rfm": rfm_detail(change)}))
        return [{
            "Source": self.source, "DetailType": detail_type, "EventBusName": self.event_bus,
            "Resources": [],
            "Detail": dumps({**base, **extra, "segment": segment,
                             "event_id": f"{self._session.sync_id}:{detail_type}:{change.customer_id}:{segment}"}),
        } for detail_type, segment, extra in events]

    def _message_entry(self, change: Change) -> dict[str, Any]:
        """A journey's event step: its detail type, the journey ids and the message id as event_id."""
        message = change.message
        if message is None or not message.detail_type:
            raise ValueError("a journey event needs a message with a detail type")
        assert self._session is not None
        detail = {"customer_id": change.customer_id, "segment": change.segment, "as_of": self._session.as_of,
                  "journey_id": message.journey_id, "step_id": message.step_id, "variant": message.variant,
                  "event_id": message.message_id, **message.attributes}
        return {"Source": self.source, "DetailType": message.detail_type, "EventBusName": self.event_bus,
                "Resources": [], "Detail": dumps(detail)}

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        tagged = [(change.customer_id, entry) for change in batch for entry in self.entries(change)]
        failed: dict[str, RecordFailure] = {}
        for start in range(0, len(tagged), PUT_EVENTS_MAX_ENTRIES):
            chunk = tagged[start:start + PUT_EVENTS_MAX_ENTRIES]
            try:
                response = self._call(self.client.put_events, Entries=[entry for _, entry in chunk])
            except (RetryableError, PermanentError) as exc:
                for cid, _ in chunk:  # earlier chunks went through; only this one's customers fail
                    failed.setdefault(cid, RecordFailure(cid, exc.reason, isinstance(exc, RetryableError)))
                continue
            if not response.get("FailedEntryCount"):
                continue
            for (cid, _), result in zip(chunk, response["Entries"], strict=True):
                code = result.get("ErrorCode")
                if code and cid not in failed:
                    failed[cid] = RecordFailure(cid, f"{code}: {result.get('ErrorMessage', '')}",
                                                retryable=is_retryable_code(code))
        # A customer whose entries partly failed is resent whole; the event_id lets consumers dedupe.
        return list(failed.values())
