"""AWS End User Messaging SMS (the pinpoint-sms-voice-v2 API, IAM prefix `sms-voice`): text
messages sent with SendTextMessage from the configured origination identity (a phone number, pool
or sender ID), to consenting customers with a phone number.

Two uses, one destination:
- activation: a text to each customer who enters a segment (`message`, which may name the segment
  as `{segment}`; `segments` limits it to some segments). SMS has no audience object to keep in
  sync, so leaving a segment or an attribute change sends nothing and counts as delivered.
- journeys: a journey's SMS step (Change.kind "message"): the step's rendered text, with the journey,
  step and variant in the message context.

Opt-outs are End User Messaging's own: a number on the identity's opt-out list is refused by the
service and reported as a failed record. SendTextMessage takes no idempotency token: a journey
never repeats a text whose outcome a crash left unknown (`replay_safe` False, docs/journeys.md);
the activation sync resends at most the one batch a crash interrupted (docs/activation.md)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin
from rfmlake.activation.destinations.base import Destination
from rfmlake.activation.errors import PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure

if TYPE_CHECKING:
    import boto3

MESSAGE_TYPES = ("PROMOTIONAL", "TRANSACTIONAL")
MESSAGE_MAX = 1600  # SendTextMessage MessageBody
CONTEXT_VALUE_MAX = 800
# An origination identity as SendTextMessage takes it and as IAM names it (sms-voice resource ARNs).
_IDENTITY_ARN = re.compile(
    r"^arn:aws[a-z-]*:sms-voice:[a-z0-9-]+:\d{12}:(phone-number|pool|sender-id)/[A-Za-z0-9_/+-]+$")
_IDENTITY_ID = re.compile(r"^(phone|pool)-[0-9a-f]{32}$")
_CONFIGURATION_SET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class SmsDestination(AwsClientMixin, Destination):
    service = "pinpoint-sms-voice-v2"
    replay_safe = False
    sends_messages = True

    def __init__(self, name: str = "sms", *, origination_identity: str, message: str | None = None,
                 message_type: str = "PROMOTIONAL", configuration_set: str | None = None,
                 segments: str | Sequence[str] | None = None, batch_size: int = 50,
                 boto3_session: boto3.Session | None = None, endpoint_url: str | None = None,
                 client: Any | None = None) -> None:
        if not (_IDENTITY_ARN.match(origination_identity) or _IDENTITY_ID.match(origination_identity)):
            raise ValueError(f"origination_identity {origination_identity!r}: the ARN of a phone number, pool or "
                             "sender ID (arn:aws:sms-voice:<region>:<account>:phone-number/<id>), or a "
                             "phone-<id> / pool-<id>")
        if message_type not in MESSAGE_TYPES:
            raise ValueError(f"message_type must be one of {list(MESSAGE_TYPES)}, got {message_type!r}")
        if configuration_set is not None and not _CONFIGURATION_SET.match(configuration_set):
            raise ValueError(f"configuration_set {configuration_set!r}: letters, digits, _ and -, up to 64")
        if message is not None:
            try:
                longest = message.format(segment="S" * 64)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"message may name only {{segment}}: {exc}") from None
            if not message.strip() or len(longest) > MESSAGE_MAX:
                raise ValueError(f"message must have 1..{MESSAGE_MAX} characters with the segment's name in it")
        self.name = name
        self.channel = "phone"
        self.batch_size = batch_size
        self.origination_identity = origination_identity
        self.message = message
        self.message_type = message_type
        self.configuration_set = configuration_set
        if isinstance(segments, str):
            segments = [s.strip() for s in segments.split(",") if s.strip()]
        self.segments = tuple(segments or ())
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    def texts(self, change: Change) -> bool:
        """Whether a change sends a text: a journey's SMS message, or (with a `message`) entering one
        of the segments (any segment when none is set)."""
        if change.kind == "message":
            return change.message is not None and change.message.channel == "sms"
        return (self.message is not None and change.kind == "entered"
                and (not self.segments or change.segment in self.segments))

    def request(self, change: Change) -> dict[str, Any]:
        # Delivery events carry the context, never the number: they join back to the lake by customer.
        context = {"rfmlake_customer_id": change.customer_id[:CONTEXT_VALUE_MAX],
                   "rfmlake_segment": change.segment[:CONTEXT_VALUE_MAX]}
        if change.message is not None:
            body = change.message.text or ""
            context.update(rfmlake_journey=change.message.journey_id, rfmlake_step=change.message.step_id,
                           rfmlake_message=change.message.message_id)
        else:
            body = (self.message or "").format(segment=change.segment)
        params: dict[str, Any] = {
            "DestinationPhoneNumber": change.phone,
            "OriginationIdentity": self.origination_identity,
            "MessageBody": body,
            "MessageType": self.message_type,
            "Context": context,
        }
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        return params

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures: list[RecordFailure] = []
        for change in batch:
            if not self.texts(change):
                continue
            if not change.phone:
                failures.append(RecordFailure(change.customer_id, "no phone number to text"))
                continue
            try:
                self._call(self.client.send_text_message, **self.request(change))
            except RetryableError as exc:
                failures.append(RecordFailure(change.customer_id, exc.reason, retryable=True))
            except PermanentError as exc:
                failures.append(RecordFailure(change.customer_id, exc.reason))
        return failures
