"""The destinations journeys send through, with botocore's Stubber validating every request against
the real service models (moto serves SES v2 and EventBridge, tested in tests/functional/journeys;
End User Messaging SMS and Connect Outbound Campaigns v2 have no local emulator): what each call
carries, per-request failures, retries, and the IAM the configured senders need."""

from __future__ import annotations

import ast
import importlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from journey_lakes import NOON, JourneyLake, customer_ids, journey_set, win_back
from rfmlake.activation import RetryPolicy
from rfmlake.activation.destinations.connect_campaigns import ConnectCampaignDestination
from rfmlake.activation.destinations.eventbridge import EventBridgeDestination
from rfmlake.activation.destinations.outbox import OutboxDestination
from rfmlake.activation.destinations.ses_email import SesEmailDestination
from rfmlake.activation.destinations.sms import SmsDestination
from rfmlake.activation.model import Change, Message
from rfmlake.journeys.channels import SENDER_IAM, build_senders, sender_iam
from rfmlake.journeys.engine import advance
from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.store import JourneyStore
from rfmlake.settings import load_settings

IDENTITY = "arn:aws:sms-voice:eu-west-1:123456789012:phone-number/phone-0123456789abcdef0123456789abcdef"
DAY0 = NOON.date()


def _client(service: str):  # noqa: ANN202 - a boto3 client
    return boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1").client(service)


def _message(customer: str, channel: str, **fields: object) -> Change:
    message = Message(message_id=f"m{customer}", journey_id="win_back", step_id="offer", variant="A",
                      channel=channel, **fields)  # type: ignore[arg-type]
    return Change("message", customer, "At Risk", email=f"{customer.lower()}@example.com", phone="+46701234567",
                  message=message)


def _senders(destination):  # noqa: ANN001, ANN202
    return dict.fromkeys(("email", "sms", "call", "event"), destination)


def test_ses_email_is_one_send_email_per_message_with_the_journey_as_tags(lake, tmp_path: Path) -> None:
    shop = JourneyLake(lake, 6)
    shop.score(DAY0, dict.fromkeys(customer_ids(6), "At Risk"))
    client = _client("sesv2")
    destination = SesEmailDestination(from_address="news@shop.example.com", configuration_set="journeys",
                                      contact_list="rfmlake-segments", topic="at_risk", client=client)
    outbox = OutboxDestination(str(tmp_path / "outbox"))
    with Stubber(client) as stubber:
        for i in range(6):
            expected = {
                "FromEmailAddress": "news@shop.example.com",
                "Destination": {"ToAddresses": [f"user{i}@example.com"]},
                "Content": {"Simple": {"Subject": {"Data": "Hello At Risk", "Charset": "UTF-8"},
                                       "Body": {"Text": {"Data": f"Come back, C{i:06d}", "Charset": "UTF-8"}}}},
                "EmailTags": [{"Name": "rfmlake_journey", "Value": "win_back"},
                              {"Name": "rfmlake_step", "Value": "offer"},
                              {"Name": "rfmlake_variant", "Value": "A"},
                              {"Name": "rfmlake_message", "Value": stubber_any_message()}],
                "ConfigurationSetName": "journeys",
                "ListManagementOptions": {"ContactListName": "rfmlake-segments", "TopicName": "at_risk"},
            }
            if i == 3:
                stubber.add_client_error("send_email", "TooManyRequestsException", "slow down", 429)
            if i == 4:
                stubber.add_client_error("send_email", "MessageRejected", "Email address is not verified", 400)
                continue
            stubber.add_response("send_email", {"MessageId": f"ses-{i}"}, expected)
        journey = win_back(holdout_percent=0, variants=[{"id": "A", "percent": 100}],
                           steps=[{"id": "offer", "email": {"template": "offer"}}])
        sleeps: list[float] = []
        report = advance(lake, journey_set(journey), {**_senders(outbox), "email": destination}, now=NOON,
                         policy=RetryPolicy(sleep=sleeps.append))
        stubber.assert_no_pending_responses()
    assert report.sent == 5 and report.failed == 1 and report.retries == 1
    failed = [s for s in JourneyStore(lake.location).sends().to_pylist() if s["status"] == "failed"]
    assert [(f["customer_id"], f["reason"]) for f in failed] == [("C000004", "MessageRejected: Email address is not verified")]
    assert destination.replay_safe is False  # one message per journaled batch, never repeated in doubt


def stubber_any_message():  # noqa: ANN201 - botocore.stub.ANY, named for what it stands for
    from botocore.stub import ANY

    return ANY


def test_sms_sends_the_steps_text_from_the_origination_identity() -> None:
    client = _client("pinpoint-sms-voice-v2")
    destination = SmsDestination(origination_identity=IDENTITY, configuration_set="journeys", client=client)
    with Stubber(client) as stubber:
        stubber.add_response("send_text_message", {"MessageId": "sms-1"}, {
            "DestinationPhoneNumber": "+46701234567", "OriginationIdentity": IDENTITY,
            "MessageBody": "Still missing you", "MessageType": "PROMOTIONAL", "ConfigurationSetName": "journeys",
            "Context": {"rfmlake_customer_id": "C1", "rfmlake_segment": "At Risk", "rfmlake_journey": "win_back",
                        "rfmlake_step": "offer", "rfmlake_message": "mC1"}})
        stubber.add_client_error("send_text_message", "ValidationException", "opted out", 400)
        failures = destination.send([_message("C1", "sms", text="Still missing you"),
                                     _message("C2", "sms", text="Still missing you")])
        stubber.assert_no_pending_responses()
    assert [(f.customer_id, f.retryable) for f in failures] == [("C2", False)]
    # an activation SMS destination without a message text sends journeys' texts only
    assert destination.texts(Change("entered", "C3", "At Risk")) is False
    with pytest.raises(ValueError, match="origination_identity 'nope'"):
        SmsDestination(origination_identity="nope")


def test_connect_puts_outbound_requests_with_the_message_id_as_client_token() -> None:
    client = _client("connectcampaignsv2")
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    destination = ConnectCampaignDestination(client=client, clock=lambda: now, expires_after_hours=6)
    batch = [_message(f"C{i}", "call", campaign_id="camp-1", call_channel="telephony") for i in range(27)]
    batch.append(_message("E1", "call", campaign_id="camp-2", call_channel="email",
                          template_arn="arn:aws:connect:eu-west-1:123456789012:instance/i/message-template/t"))
    with Stubber(client) as stubber:
        first = [r for r in map(destination.outbound_request, batch[:25])]
        assert first[0] == {"clientToken": "mC0", "expirationTime": now + timedelta(hours=6),
                            "channelSubtypeParameters": {"telephony": {
                                "destinationPhoneNumber": "+46701234567",
                                "attributes": {"customer_id": "C0", "journey_id": "win_back", "step_id": "offer",
                                               "variant": "A", "segment": "At Risk"}}}}
        stubber.add_response("put_outbound_request_batch", {
            "successfulRequests": [{"clientToken": f"mC{i}", "id": f"r{i}"} for i in range(24)],
            "failedRequests": [{"clientToken": "mC24", "failureCode": "RequestThrottled"}]},
            {"id": "camp-1", "outboundRequests": first})
        stubber.add_response("put_outbound_request_batch", {"failedRequests": [
            {"clientToken": "mC25", "failureCode": "InvalidInput"}]},
            {"id": "camp-1", "outboundRequests": [destination.outbound_request(c) for c in batch[25:27]]})
        stubber.add_response("put_outbound_request_batch", {}, {
            "id": "camp-2", "outboundRequests": [destination.outbound_request(batch[27])]})
        failures = destination.send(batch)
        stubber.assert_no_pending_responses()
    assert [(f.customer_id, f.reason, f.retryable) for f in failures] == [
        ("C24", "RequestThrottled", True), ("C25", "InvalidInput", False)]
    email = destination.outbound_request(batch[27])["channelSubtypeParameters"]["email"]
    assert email["destinationEmailAddress"] == "e1@example.com" and email["templateArn"].endswith("/t")


def test_an_event_step_is_one_event_with_the_message_id() -> None:
    from rfmlake.activation.destinations.base import SyncSession

    client = _client("events")
    destination = EventBridgeDestination(event_bus="crm", source="rfmlake.journeys", client=client)
    destination.open(SyncSession(Path("."), "tick", "2026-06-01", "tick", (), False))
    entry = destination.entries(_message("C1", "event", detail_type="WinBackReminderSent"))
    assert len(entry) == 1 and entry[0]["DetailType"] == "WinBackReminderSent" and entry[0]["Source"] == "rfmlake.journeys"
    detail = json.loads(entry[0]["Detail"])
    assert detail["event_id"] == "mC1" and detail["journey_id"] == "win_back" and "@" not in entry[0]["Detail"]
    with Stubber(client) as stubber:
        stubber.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}]}, {"Entries": entry})
        assert destination.send([_message("C1", "event", detail_type="WinBackReminderSent")]) == []


def test_senders_come_from_the_settings_and_get_exactly_the_iam_they_call(tmp_path: Path) -> None:
    settings = load_settings(None, {
        "journeys.email.destination": "ses", "journeys.email.from_address": "news@shop.example.com",
        "journeys.sms.destination": "sms", "journeys.sms.origination_identity": IDENTITY,
        "journeys.call.destination": "connect_campaigns", "journeys.event.destination": "eventbridge",
        "journeys.event.event_bus": "crm"})
    senders = build_senders(settings.journeys, str(tmp_path))
    assert [type(senders[c]).__name__ for c in ("email", "sms", "call", "event")] == [
        "SesEmailDestination", "SmsDestination", "ConnectCampaignDestination", "EventBridgeDestination"]
    local = build_senders(load_settings().journeys, str(tmp_path))
    assert {type(d).__name__ for d in local.values()} == {"OutboxDestination"}
    actions, resources = sender_iam(settings.journeys, partition="aws", region="eu-west-1", account="123456789012")
    modules = {"ses": "ses_email", "sms": "sms", "connect_campaigns": "connect_campaigns", "eventbridge": "eventbridge"}
    prefixes = {"ses": "ses", "sms": "sms-voice", "connect_campaigns": "connect-campaigns", "eventbridge": "events"}
    for kind, module in modules.items():
        assert set(SENDER_IAM[kind][0]) == {f"{prefixes[kind]}:{op}" for op in _operations(module)}
    assert set(actions) == {a for kind in modules for a in SENDER_IAM[kind][0]}
    base = "eu-west-1:123456789012"
    assert resources == sorted([  # the sender's own resources, not every identity, list or bus of the account
        f"arn:aws:ses:{base}:identity/news@shop.example.com", f"arn:aws:ses:{base}:identity/shop.example.com",
        IDENTITY, f"arn:aws:sms-voice:{base}:opt-out-list/*", f"arn:aws:connect-campaigns:{base}:campaign/*",
        f"arn:aws:events:{base}:event-bus/crm"])
    listed = load_settings(None, {
        "journeys.email.destination": "ses", "journeys.email.from_address": "Shop <news@shop.example.com>",
        "journeys.email.configuration_set": "journeys", "journeys.email.contact_list": "customers",
        "journeys.email.topic": "offers"})
    assert sender_iam(listed.journeys, partition="aws", region="eu-west-1", account="123456789012") == (
        ("ses:SendEmail",), sorted([
            f"arn:aws:ses:{base}:identity/news@shop.example.com", f"arn:aws:ses:{base}:identity/shop.example.com",
            f"arn:aws:ses:{base}:configuration-set/journeys", f"arn:aws:ses:{base}:contact-list/customers"]))
    assert sender_iam(load_settings().journeys, partition="aws", region="eu-west-1", account="1") == ((), [])
    bad = load_settings(None, {"journeys.sms.destination": "sms", "journeys.sms.origination_identity": "x"})
    with pytest.raises(JourneyError, match="journeys settings: origination_identity 'x'"):
        build_senders(bad.journeys, str(tmp_path))


def _operations(module_name: str) -> set[str]:
    """The API operations a module calls (`self.client.<method>`) by botocore's names, message sends only."""
    module = importlib.import_module(f"rfmlake.activation.destinations.{module_name}")
    tree = ast.parse(Path(module.__file__).read_text())
    methods = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)
               and isinstance(node.value, ast.Attribute) and node.value.attr == "client"}
    (cls,) = [c for c in vars(module).values() if isinstance(c, type) and getattr(c, "service", None)
              and c.__module__ == module.__name__]
    mapping = _client(cls.service).meta.method_to_api_mapping
    return {mapping[m] for m in methods}
