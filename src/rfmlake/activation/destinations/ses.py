"""Amazon SES v2: one contact list, one topic per segment; a contact is opted in to the topic of
its segment and out of every other, so entering, moving and leaving are each one idempotent call."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin, dumps, rfm_detail
from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.errors import PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure, segment_slug

if TYPE_CHECKING:
    import boto3


class SesContactListDestination(AwsClientMixin, Destination):
    service = "sesv2"

    def __init__(self, name: str = "ses", *, contact_list: str = "rfmlake-segments", batch_size: int = 50,
                 boto3_session: boto3.Session | None = None, endpoint_url: str | None = None,
                 client: Any | None = None) -> None:
        self.name = name
        self.channel = "email"
        self.batch_size = batch_size
        self.contact_list = contact_list
        self.topics: list[str] = []
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    def open(self, session: SyncSession) -> None:
        wanted = {segment_slug(s): s for s in session.segments}
        try:
            current = self._call(self.client.get_contact_list, ContactListName=self.contact_list)
        except PermanentError as exc:
            if not exc.reason.startswith("NotFoundException"):
                raise
            current = None
        existing = {t["TopicName"]: t for t in (current or {}).get("Topics", [])}
        topics = list(existing.values()) + [
            {"TopicName": slug, "DisplayName": segment[:128], "Description": f"rfmlake segment {segment}",
             "DefaultSubscriptionStatus": "OPT_OUT"}
            for slug, segment in sorted(wanted.items()) if slug not in existing
        ]
        if current is None:
            self._call(self.client.create_contact_list, ContactListName=self.contact_list, Topics=topics,
                       Description="rfmlake RFM segments, one topic per segment")
        elif len(topics) != len(existing):
            self._call(self.client.update_contact_list, ContactListName=self.contact_list, Topics=topics)
        self.topics = sorted(t["TopicName"] for t in topics)

    def _preferences(self, segment: str | None) -> list[dict[str, str]]:
        active = segment_slug(segment) if segment else None
        return [{"TopicName": t, "SubscriptionStatus": "OPT_IN" if t == active else "OPT_OUT"} for t in self.topics]

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures: list[RecordFailure] = []
        for change in batch:
            if not change.email:
                failures.append(RecordFailure(change.customer_id, "no email address to (un)subscribe"))
                continue
            segment = None if change.kind == "exited" else change.segment
            attributes = dumps({"customer_id": change.customer_id, "segment": segment, **rfm_detail(change)})
            params = {"ContactListName": self.contact_list, "EmailAddress": change.email,
                      "TopicPreferences": self._preferences(segment), "AttributesData": attributes}
            try:
                try:
                    self._call(self.client.update_contact, **params)
                except PermanentError as exc:
                    if not exc.reason.startswith("NotFoundException") or change.kind == "exited":
                        if change.kind == "exited" and exc.reason.startswith("NotFoundException"):
                            continue  # never subscribed: nothing to leave
                        raise
                    self._call(self.client.create_contact, UnsubscribeAll=False, **params)
            except RetryableError as exc:
                failures.append(RecordFailure(change.customer_id, exc.reason, retryable=True))
            except PermanentError as exc:
                failures.append(RecordFailure(change.customer_id, exc.reason))
        return failures
