"""Amazon SES v2 SendEmail: one email per journey message, rendered by rfmlake from the journey's
template (journeys/templates/), sent as simple content with the journey, step, variant and message
id as email tags (they come back in SES events through a configuration set). With a contact list
and topic, SES adds its list-management headers and fills {{amazonSESUnsubscribeUrl}}.

SendEmail takes no idempotency token, so a send whose outcome a crash left unknown cannot be
repeated safely: `replay_safe` is False and the journeys engine sends one message per journaled
batch, never repeating one in doubt (docs/journeys.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations._aws import AwsClientMixin
from rfmlake.activation.destinations.base import Destination
from rfmlake.activation.errors import PermanentError, RetryableError
from rfmlake.activation.model import Change, RecordFailure

if TYPE_CHECKING:
    import boto3


class SesEmailDestination(AwsClientMixin, Destination):
    service = "sesv2"
    replay_safe = False
    sends_messages = True

    def __init__(self, name: str = "ses_email", *, from_address: str, configuration_set: str | None = None,
                 contact_list: str | None = None, topic: str | None = None, batch_size: int = 1,
                 boto3_session: boto3.Session | None = None, endpoint_url: str | None = None,
                 client: Any | None = None) -> None:
        if "@" not in from_address:
            raise ValueError(f"from_address {from_address!r} is not an email address")
        if (contact_list is None) != (topic is None):
            raise ValueError("contact_list and topic go together (SES list management)")
        self.name = name
        self.channel = "email"
        self.batch_size = batch_size
        self.from_address = from_address
        self.configuration_set = configuration_set
        self.contact_list = contact_list
        self.topic = topic
        self._init_client(boto3_session=boto3_session, endpoint_url=endpoint_url, client=client)

    def request(self, change: Change) -> dict[str, Any]:
        message = change.message
        if message is None or message.channel != "email":
            raise ValueError(f"{self.name} sends journey emails, not {change.kind!r} changes")
        body: dict[str, Any] = {"Text": {"Data": message.text or "", "Charset": "UTF-8"}}
        if message.html:
            body["Html"] = {"Data": message.html, "Charset": "UTF-8"}
        params: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [change.email]},
            "Content": {"Simple": {"Subject": {"Data": message.subject or "", "Charset": "UTF-8"}, "Body": body}},
            "EmailTags": [{"Name": "rfmlake_journey", "Value": message.journey_id},
                          {"Name": "rfmlake_step", "Value": message.step_id},
                          {"Name": "rfmlake_variant", "Value": message.variant},
                          {"Name": "rfmlake_message", "Value": message.message_id}],
        }
        if self.configuration_set:
            params["ConfigurationSetName"] = self.configuration_set
        if self.contact_list and self.topic:
            params["ListManagementOptions"] = {"ContactListName": self.contact_list, "TopicName": self.topic}
        return params

    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        failures: list[RecordFailure] = []
        for change in batch:
            if not change.email:
                failures.append(RecordFailure(change.customer_id, "no email address"))
                continue
            try:
                self._call(self.client.send_email, **self.request(change))
            except RetryableError as exc:
                failures.append(RecordFailure(change.customer_id, exc.reason, retryable=True))
            except PermanentError as exc:
                failures.append(RecordFailure(change.customer_id, exc.reason))
        return failures
