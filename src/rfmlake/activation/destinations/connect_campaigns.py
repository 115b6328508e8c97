"""Amazon Connect Outbound Campaigns v2: a journey's call step puts one outbound request per
customer into the step's campaign (PutOutboundRequestBatch, 25 per call), and the campaign dials
(telephony), texts (sms) or emails them through the contact center. The message id is the
request's clientToken, so a batch replayed after a crash is deduplicated by the service.
Failures are reported per request (failedRequests with a failureCode)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin
from rfmlake.activation.destinations.base import Destination
from rfmlake.activation.errors import PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure

if TYPE_CHECKING:
    import boto3

PUT_MAX_REQUESTS = 25
RETRYABLE_FAILURES = frozenset({"RequestThrottled", "BufferLimitExceeded", "UnknownError"})


class ConnectCampaignDestination(AwsClientMixin, Destination):
    service = "connectcampaignsv2"
    replay_safe = True  # clientToken
    sends_messages = True

    def __init__(self, name: str = "connect_campaigns", *, expires_after_hours: int = 24, batch_size: int = 100,
                 boto3_session: boto3.Session | None = None, endpoint_url: str | None = None,
                 client: Any | None = None, clock: Any = None) -> None:
        if not 1 <= expires_after_hours <= 24 * 14:
            raise ValueError(f"expires_after_hours must be 1..336, got {expires_after_hours}")
        self.name = name
        self.channel = "any"
        self.batch_size = batch_size
        self.expires_after = timedelta(hours=expires_after_hours)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    def outbound_request(self, change: Change) -> dict[str, Any]:
        message = change.message
        if message is None or message.channel != "call" or not message.campaign_id:
            raise ValueError(f"{self.name} sends journey call steps, not {change.kind!r} changes")
        context = {"customer_id": change.customer_id, "journey_id": message.journey_id,
                   "step_id": message.step_id, "variant": message.variant, "segment": change.segment}
        kind = message.call_channel or "telephony"
        if kind == "telephony":
            parameters: dict[str, Any] = {"telephony": {"destinationPhoneNumber": change.phone, "attributes": context}}
        elif kind == "sms":
            parameters = {"sms": {"destinationPhoneNumber": change.phone, "templateParameters": context,
                                  **({"templateArn": message.template_arn} if message.template_arn else {})}}
        else:
            parameters = {"email": {"destinationEmailAddress": change.email, "templateParameters": context,
                                    **({"templateArn": message.template_arn} if message.template_arn else {})}}
        return {"clientToken": message.message_id, "expirationTime": self._clock() + self.expires_after,
                "channelSubtypeParameters": parameters}

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures: list[RecordFailure] = []
        by_campaign: dict[str, list[Change]] = {}
        for change in batch:
            message = change.message
            kind = (message.call_channel if message else None) or "telephony"
            if message is None or not message.campaign_id:
                failures.append(RecordFailure(change.customer_id, "not a journey call step"))
            elif (kind == "email" and not change.email) or (kind != "email" and not change.phone):
                failures.append(RecordFailure(change.customer_id, f"no address for a {kind} campaign"))
            else:
                by_campaign.setdefault(message.campaign_id, []).append(change)
        for campaign, changes in sorted(by_campaign.items()):
            for start in range(0, len(changes), PUT_MAX_REQUESTS):
                chunk = changes[start:start + PUT_MAX_REQUESTS]
                by_token = {c.message.message_id: c for c in chunk if c.message}
                try:
                    response = self._call(self.client.put_outbound_request_batch, id=campaign,
                                          outboundRequests=[self.outbound_request(c) for c in chunk])
                except (RetryableError, PermanentError) as exc:
                    failures.extend(RecordFailure(c.customer_id, exc.reason, isinstance(exc, RetryableError))
                                    for c in chunk)
                    continue
                for item in response.get("failedRequests", []):
                    change = by_token.get(item.get("clientToken", ""))
                    if change is None:
                        continue
                    code = item.get("failureCode", "UnknownError")
                    failures.append(RecordFailure(change.customer_id, code, retryable=code in RETRYABLE_FAILURES))
        return failures
