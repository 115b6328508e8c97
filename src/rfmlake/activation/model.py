"""Value types of a sync: a member of the audience, a planned change, a record that failed, the report."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# "message": one message of a journey step (rfmlake.journeys), sent by destinations that send messages.
ChangeKind = Literal["entered", "exited", "changed", "message"]
Channel = Literal["email", "phone", "any", "none"]

# Attributes of gold.customer_rfm a destination receives (never addresses: those travel separately).
# Only values that change when the customer does: the last order's date rather than recency_days
# and the run's as_of, which move for everyone every day and would re-send the whole audience daily
# (a destination that needs recency computes it from last_order_date).
MEMBER_ATTRIBUTES: tuple[str, ...] = (
    "rfm_segment", "cluster_label", "rfm_cell", "r_score", "f_score", "m_score",
    "last_order_date", "frequency", "monetary",
)


def segment_slug(segment: str) -> str:
    """A name usable as an SES topic, a file name or a Pinpoint segment key: 'Cannot Lose Them' -> cannot_lose_them."""
    slug = re.sub(r"[^a-z0-9]+", "_", segment.strip().lower()).strip("_")
    if not slug:
        raise ValueError(f"segment name {segment!r} has no letters or digits")
    return slug


@dataclass(frozen=True)
class Member:
    """One customer of gold.customer_rfm as a destination sees it."""

    customer_id: str
    segment: str
    attributes: dict[str, Any]
    email: str | None = None
    phone: str | None = None

    def fingerprint(self, channel: Channel) -> str:
        """Hash of everything a destination receives; a change means the record must be sent again.
        The address is hashed in, so the state on disk never holds it in clear."""
        payload = {"a": self.attributes, "s": self.segment}
        if channel in ("email", "any"):
            payload["e"] = self.email
        if channel in ("phone", "any"):
            payload["p"] = self.phone
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Message:
    """What a journey step sends to one customer (rfmlake.journeys): rendered content and the ids
    that make it traceable. `message_id` is deterministic per (journey, entry, step), so a batch
    replayed after a crash carries the same ids (an idempotency token where the service takes one).
    Never holds an address: those travel on the Change."""

    message_id: str
    journey_id: str
    step_id: str
    variant: str
    channel: Literal["email", "sms", "call", "event"]
    subject: str | None = None          # email
    text: str | None = None             # email text part, SMS body
    html: str | None = None             # email HTML part
    template: str | None = None         # the journey's template name (email)
    campaign_id: str | None = None      # call: the Connect outbound campaign
    call_channel: str | None = None     # call: telephony, sms or email
    template_arn: str | None = None     # call: the Connect message template (sms, email)
    detail_type: str | None = None      # event
    attributes: dict[str, Any] = field(default_factory=dict)  # non-PII context: segment, entry date, ...


@dataclass(frozen=True)
class Change:
    """One record to send. `entered` with a previous_segment is a move between segments; `message`
    is a journey's message to the customer (`message` set)."""

    kind: ChangeKind
    customer_id: str
    segment: str                      # the segment entered, changed within, or exited (message: the current one)
    previous_segment: str | None = None
    member: Member | None = None      # None for exits: the customer left every segment of this destination
    email: str | None = None          # resolved address (exits included, to unsubscribe)
    phone: str | None = None
    message: Message | None = None

    @property
    def key(self) -> str:
        if self.message is not None:
            return f"message:{self.message.message_id}"
        return f"{self.kind}:{self.customer_id}:{self.segment}"


@dataclass(frozen=True)
class RecordFailure:
    """A record a destination could not accept. Retryable ones are retried with backoff first."""

    customer_id: str
    reason: str
    retryable: bool = False


@dataclass
class SyncReport:
    destination: str
    gold_version: str
    status: Literal["synced", "up_to_date"] = "synced"
    full: bool = False
    resumed: bool = False
    planned: dict[str, int] = field(default_factory=dict)   # entered / exited / changed
    sent: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> customers not sent
    batches: int = 0
    retries: int = 0
    seconds: float = 0.0
    dead_letter: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = dict(sorted(self.skipped.items()))
        return data

    def render(self) -> str:
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items())) or "none"
        planned = ", ".join(f"{k}={v}" for k, v in sorted(self.planned.items())) or "nothing"
        head = f"{self.destination}: {self.status} gold version {self.gold_version}"
        if self.full:
            head += " (full resync)"
        if self.resumed:
            head += " (resumed)"
        return (f"{head}\n  planned: {planned}\n  sent: {self.sent}  failed: {self.failed}  "
                f"retries: {self.retries}  batches: {self.batches}\n  skipped: {skipped}")
