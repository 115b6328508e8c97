"""Destination configuration: by name on the CLI, by environment in Lambda (the same variables work
locally). Nothing is read at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rfmlake.activation.destinations.base import Destination
from rfmlake.activation.errors import ActivationError

if TYPE_CHECKING:
    import boto3

DESTINATION_KINDS: tuple[str, ...] = ("file", "eventbridge", "ses", "sms", "customer_profiles", "pinpoint")
RETIRED_KINDS: tuple[str, ...] = ("pinpoint",)
PINPOINT_RETIRED = (
    "destination 'pinpoint' is retired: AWS ended Amazon Pinpoint's engagement features (endpoints, segments, "
    "campaigns, journeys) on 2026-10-30. Use 'ses' (Amazon SES) for email, 'sms' (AWS End User Messaging SMS, "
    "the pinpoint-sms-voice-v2 API) for SMS, 'customer_profiles' (Amazon Connect Customer Profiles) for "
    "contact centers. Only for an account that still has Pinpoint's engagement API: set "
    "RFMLAKE_PINPOINT_ACKNOWLEDGE_RETIRED=true (deploy.activation.pinpoint.acknowledge_retired: 'true')"
)
_TRUE = ("true", "yes", "1")

ENV_DESTINATIONS = "RFMLAKE_ACTIVATION_DESTINATIONS"   # comma list, default "file"
ENV_ENDPOINT_URL = "RFMLAKE_AWS_ENDPOINT_URL"          # a test or LocalStack endpoint; unset on AWS
ENV_SETTINGS: dict[str, tuple[str, str, bool]] = {
    # variable -> (destination kind, constructor argument, required)
    "RFMLAKE_FILE_CHANNEL": ("file", "channel", False),
    "RFMLAKE_EVENTBRIDGE_BUS": ("eventbridge", "event_bus", False),
    "RFMLAKE_EVENTBRIDGE_SOURCE": ("eventbridge", "source", False),
    "RFMLAKE_SES_CONTACT_LIST": ("ses", "contact_list", False),
    "RFMLAKE_SMS_ORIGINATION_IDENTITY": ("sms", "origination_identity", True),
    "RFMLAKE_SMS_MESSAGE": ("sms", "message", True),
    "RFMLAKE_SMS_MESSAGE_TYPE": ("sms", "message_type", False),
    "RFMLAKE_SMS_CONFIGURATION_SET": ("sms", "configuration_set", False),
    "RFMLAKE_SMS_SEGMENTS": ("sms", "segments", False),
    "RFMLAKE_PINPOINT_APPLICATION_ID": ("pinpoint", "application_id", True),
    "RFMLAKE_PINPOINT_CHANNEL": ("pinpoint", "channel", False),
    "RFMLAKE_PINPOINT_ACKNOWLEDGE_RETIRED": ("pinpoint", "acknowledge_retired", False),
    "RFMLAKE_PROFILES_DOMAIN": ("customer_profiles", "domain_name", True),
}


def build_destination(kind: str, *, options: Mapping[str, Any] | None = None,
                      boto3_session: boto3.Session | None = None, endpoint_url: str | None = None) -> Destination:
    options = dict(options or {})
    if kind == "file":
        from rfmlake.activation.destinations.file import FileDestination

        return FileDestination(**options)
    if kind == "pinpoint" and str(options.pop("acknowledge_retired", "")).lower() not in _TRUE:
        raise ActivationError(PINPOINT_RETIRED)
    missing = [var for var, (k, arg, required) in ENV_SETTINGS.items() if k == kind and required and arg not in options]
    if missing:
        raise ActivationError(f"destination {kind!r} needs {', '.join(missing)} to be set")
    aws: dict[str, Any] = {"boto3_session": boto3_session, "endpoint_url": endpoint_url, **options}
    try:
        if kind == "eventbridge":
            from rfmlake.activation.destinations.eventbridge import EventBridgeDestination

            return EventBridgeDestination(**aws)
        if kind == "ses":
            from rfmlake.activation.destinations.ses import SesContactListDestination

            return SesContactListDestination(**aws)
        if kind == "sms":
            from rfmlake.activation.destinations.sms import SmsDestination

            return SmsDestination(**aws)
        if kind == "pinpoint":
            from rfmlake.activation.destinations.pinpoint import PinpointDestination

            return PinpointDestination(**aws)
        if kind == "customer_profiles":
            from rfmlake.activation.destinations.customer_profiles import CustomerProfilesDestination

            return CustomerProfilesDestination(**aws)
    except ValueError as exc:
        raise ActivationError(f"destination {kind!r}: {exc}") from None
    raise ActivationError(f"unknown destination {kind!r}; known: {', '.join(DESTINATION_KINDS)}")


def destination_names_from_env(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    names = [n.strip() for n in env.get(ENV_DESTINATIONS, "file").split(",") if n.strip()]
    unknown = sorted(set(names) - set(DESTINATION_KINDS))
    if unknown:
        raise ActivationError(f"{ENV_DESTINATIONS}: unknown destination(s) {unknown}; known: {list(DESTINATION_KINDS)}")
    if not names:
        raise ActivationError(f"{ENV_DESTINATIONS} names no destination")
    return names


def destination_from_env(kind: str, env: Mapping[str, str] | None = None,
                         boto3_session: boto3.Session | None = None) -> Destination:
    env = os.environ if env is None else env
    options = {arg: env[var] for var, (k, arg, _) in ENV_SETTINGS.items() if k == kind and env.get(var)}
    return build_destination(kind, options=options, boto3_session=boto3_session,
                             endpoint_url=env.get(ENV_ENDPOINT_URL) or None)


def destination_options(kind: str) -> dict[str, bool]:
    """The options destination `kind` takes from the environment: constructor argument -> required."""
    if kind not in DESTINATION_KINDS:
        raise ActivationError(f"unknown destination {kind!r}; known: {', '.join(DESTINATION_KINDS)}")
    return {arg: required for _var, (k, arg, required) in ENV_SETTINGS.items() if k == kind}


def check_destination(kind: str, options: Mapping[str, str]) -> Destination:
    """Build destination `kind` from `options` (as destination_from_env would) without calling AWS:
    names the unknown or missing option, and the destination's own checks judge the values."""
    allowed = destination_options(kind)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ActivationError(f"destination {kind!r} has no option {', '.join(map(repr, unknown))}; "
                              f"options: {', '.join(allowed) or 'none'}")
    if kind in RETIRED_KINDS and str(options.get("acknowledge_retired", "")).lower() not in _TRUE:
        raise ActivationError(PINPOINT_RETIRED)
    missing = [arg for arg, required in allowed.items() if required and not options.get(arg)]
    if missing:
        raise ActivationError(f"destination {kind!r} needs {', '.join(missing)}")
    return build_destination(kind, options=options)


def destination_env(destinations: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The environment variables from which destination_names_from_env and destination_from_env build
    these destinations ({kind: options}): what a deployment sets on the function that activates."""
    env = {ENV_DESTINATIONS: ",".join(destinations)}
    for kind, options in destinations.items():
        check_destination(kind, options)
        for var, (k, arg, _required) in ENV_SETTINGS.items():
            if k == kind and options.get(arg):
                env[var] = str(options[arg])
    return env


# What each destination's API calls need in IAM (infra/ grants them to the role that activates):
# actions, and resource ARNs filled with partition, region, account and the destination's settings.
# tests/unit/activation checks the actions against every client call in the destination's module.
DESTINATION_IAM: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "file": ((), ()),  # writes into the lake: the activating stage's own access to gold/
    "eventbridge": (("events:PutEvents",), ("arn:{partition}:events:{region}:{account}:event-bus/{event_bus}",)),
    "ses": (
        ("ses:GetContactList", "ses:CreateContactList", "ses:UpdateContactList", "ses:CreateContact",
         "ses:UpdateContact"),
        ("arn:{partition}:ses:{region}:{account}:contact-list/{contact_list}",),
    ),
    "sms": (
        ("sms-voice:SendTextMessage",),
        # the origination identity (filled in by destination_iam), the configuration set if one is set, and
        # the opt-out lists SendTextMessage checks the number against
        ("arn:{partition}:sms-voice:{region}:{account}:opt-out-list/*",),
    ),
    "pinpoint": (
        ("mobiletargeting:GetSegments", "mobiletargeting:CreateSegment", "mobiletargeting:UpdateSegment",
         "mobiletargeting:UpdateEndpointsBatch"),
        ("arn:{partition}:mobiletargeting:{region}:{account}:apps/{application_id}",
         "arn:{partition}:mobiletargeting:{region}:{account}:apps/{application_id}/*"),
    ),
    "customer_profiles": (
        ("profile:PutProfileObjectType", "profile:BatchPutProfileObject"),
        ("arn:{partition}:profile:{region}:{account}:domains/{domain_name}",
         "arn:{partition}:profile:{region}:{account}:domains/{domain_name}/*"),
    ),
}


def destination_iam(kind: str, options: Mapping[str, str], *, partition: str, region: str,
                    account: str) -> tuple[tuple[str, ...], list[str]]:
    """(IAM actions, resource ARNs) destination `kind` with `options` needs; the settings a destination
    defaults (the event bus, the contact list) are read from the built destination itself."""
    destination = check_destination(kind, options)
    actions, templates = DESTINATION_IAM[kind]
    values = {arg: getattr(destination, arg) for arg in destination_options(kind) if hasattr(destination, arg)}
    if kind == "eventbridge" and str(values["event_bus"]).startswith("arn:"):
        return actions, [str(values["event_bus"])]  # a bus named by its ARN (e.g. in another account)
    if kind == "sms":
        return actions, sms_resources(str(values["origination_identity"]), values.get("configuration_set"),
                                      partition=partition, region=region, account=account)
    return actions, [t.format(partition=partition, region=region, account=account, **values) for t in templates]


def sms_resources(identity: str, configuration_set: str | None, *, partition: str, region: str,
                  account: str) -> list[str]:
    """What SendTextMessage from `identity` needs in IAM: the origination identity, the opt-out lists
    it checks numbers against, and the configuration set if one is set (activation and journeys)."""
    if not identity.startswith("arn:"):  # phone-<id> / pool-<id>
        kind_of = "phone-number" if identity.startswith("phone-") else "pool"
        identity = f"arn:{partition}:sms-voice:{region}:{account}:{kind_of}/{identity}"
    resources = [identity, *(t.format(partition=partition, region=region, account=account)
                             for t in DESTINATION_IAM["sms"][1])]
    if configuration_set:
        resources.append(f"arn:{partition}:sms-voice:{region}:{account}:configuration-set/{configuration_set}")
    return resources


def lake_from_env(env: Mapping[str, str] | None = None) -> str:
    """RFMLAKE_LAKE: a lake folder or s3://bucket/prefix, kept as given."""
    env = os.environ if env is None else env
    value = env.get("RFMLAKE_LAKE")
    if not value:
        raise ActivationError("RFMLAKE_LAKE (the lake folder or s3:// location) is not set")
    return value
