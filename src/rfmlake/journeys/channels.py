"""Where each channel's messages go, from the settings (`journeys.email`, `.sms`, `.call`,
`.event`): the outbox in the lake (the local default), or SES v2, End User Messaging SMS, Connect
Outbound Campaigns v2 and EventBridge, each an activation Destination. No client is made here:
each destination creates its own on first use."""

from __future__ import annotations

from email.utils import parseaddr
from typing import TYPE_CHECKING

from rfmlake.activation.destinations.base import Destination
from rfmlake.activation.destinations.outbox import OUTBOX, OutboxDestination
from rfmlake.journeys.errors import JourneyError
from rfmlake.lake.storage import Storage
from rfmlake.settings import JourneyEmailSettings, JourneysSettings

if TYPE_CHECKING:
    import boto3

# What each sending destination's API calls need in IAM (infra/ grants them to the stage function):
# actions and resource ARN templates, filled like rfmlake.activation.config.DESTINATION_IAM.
SENDER_IAM: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "outbox": ((), ()),  # writes into the lake: the stage's own access to gold/
    # SendEmail is authorized against the sender's identity (the address, or its domain when the domain is
    # the verified identity) and the configuration set and contact list the request names: ses_resources.
    "ses": (("ses:SendEmail",), ()),
    "sms": (("sms-voice:SendTextMessage",), ()),  # resources: activation's sms_resources (identity, opt-out lists)
    "connect_campaigns": (("connect-campaigns:PutOutboundRequestBatch",),
                          ("arn:{partition}:connect-campaigns:{region}:{account}:campaign/*",)),
    "eventbridge": (("events:PutEvents",), ("arn:{partition}:events:{region}:{account}:event-bus/{event_bus}",)),
}


def outbox_location(lake_location: str) -> str:
    return Storage.join(Storage.normalize(lake_location), OUTBOX)


def build_senders(settings: JourneysSettings, lake_location: str, *, boto3_session: boto3.Session | None = None,
                  endpoint_url: str | None = None) -> dict[str, Destination]:
    """channel -> destination. One outbox serves every channel that uses it."""
    outbox = OutboxDestination(outbox_location(lake_location))
    aws = {"boto3_session": boto3_session, "endpoint_url": endpoint_url}
    senders: dict[str, Destination] = {}
    try:
        if settings.email.destination == "ses":
            from rfmlake.activation.destinations.ses_email import SesEmailDestination

            senders["email"] = SesEmailDestination(
                from_address=str(settings.email.from_address), configuration_set=settings.email.configuration_set,
                contact_list=settings.email.contact_list, topic=settings.email.topic, **aws)
        if settings.sms.destination == "sms":
            from rfmlake.activation.destinations.sms import SmsDestination

            senders["sms"] = SmsDestination(
                "journeys_sms", origination_identity=str(settings.sms.origination_identity),
                message_type=settings.sms.message_type, configuration_set=settings.sms.configuration_set, **aws)
        if settings.call.destination == "connect_campaigns":
            from rfmlake.activation.destinations.connect_campaigns import ConnectCampaignDestination

            senders["call"] = ConnectCampaignDestination(expires_after_hours=settings.call.expires_after_hours, **aws)
        if settings.event.destination == "eventbridge":
            from rfmlake.activation.destinations.eventbridge import EventBridgeDestination

            senders["event"] = EventBridgeDestination("journeys_events", event_bus=settings.event.event_bus,
                                                      source=settings.event.source, **aws)
    except ValueError as exc:
        raise JourneyError(f"journeys settings: {exc}") from None
    for channel in ("email", "sms", "call", "event"):
        senders.setdefault(channel, outbox)
    return senders


def ses_resources(settings: JourneyEmailSettings, *, partition: str, region: str, account: str) -> list[str]:
    """What SendEmail from the settings' sender needs in IAM: the address's identity and its domain's
    (whichever is the verified one), the configuration set and the contact list if set."""
    base = f"arn:{partition}:ses:{region}:{account}"
    address = parseaddr(str(settings.from_address))[1]
    resources = [f"{base}:identity/{address}", f"{base}:identity/{address.rpartition('@')[2]}"]
    if settings.configuration_set:
        resources.append(f"{base}:configuration-set/{settings.configuration_set}")
    if settings.contact_list:
        resources.append(f"{base}:contact-list/{settings.contact_list}")
    return resources


def sender_iam(settings: JourneysSettings, *, partition: str, region: str,
               account: str) -> tuple[tuple[str, ...], list[str]]:
    """(IAM actions, resource ARNs) the configured senders need, for the role that runs the stage."""
    from rfmlake.activation.config import sms_resources

    actions: list[str] = []
    resources: list[str] = []
    if settings.email.destination == "ses":
        resources += ses_resources(settings.email, partition=partition, region=region, account=account)
    if settings.sms.destination == "sms":
        resources += sms_resources(str(settings.sms.origination_identity), settings.sms.configuration_set,
                                   partition=partition, region=region, account=account)
    for kind, values in ((settings.email.destination, {}), (settings.sms.destination, {}),
                         (settings.call.destination, {}),
                         (settings.event.destination, {"event_bus": settings.event.event_bus})):
        kind_actions, templates = SENDER_IAM[kind]
        actions.extend(a for a in kind_actions if a not in actions)
        for template in templates:
            if kind == "eventbridge" and settings.event.event_bus.startswith("arn:"):
                resources.append(settings.event.event_bus)
                break
            resources.append(template.format(partition=partition, region=region, account=account, **values))
    return tuple(actions), sorted(set(resources))
