"""EventBridge and SES v2 destinations against moto in server mode: the service really receives the
events (rule -> SQS target, read back) and the contacts (ListContacts)."""

from __future__ import annotations

import json
import socket

import boto3
import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from aws_lake import activation_events_queue
from rfmlake.activation import RetryPolicy, sync
from rfmlake.activation.destinations.eventbridge import EventBridgeDestination
from rfmlake.activation.destinations.ses import SesContactListDestination


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture()
def session(moto_url):
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")


def _queue_for_rule(session, url: str, bus: str) -> str:
    return activation_events_queue(session, bus=bus, endpoint_url=url)


def _drain(session, url: str, queue_url: str) -> list[dict]:
    sqs = session.client("sqs", endpoint_url=url)
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_eventbridge_receives_entered_and_exited_events(lake, session, moto_url):
    queue = _queue_for_rule(session, moto_url, "rfm-bus")
    write_customers(lake, 25, no_consent={0})
    write_rfm(lake, round_robin(25))
    dest = EventBridgeDestination(event_bus="rfm-bus", batch_size=15, boto3_session=session, endpoint_url=moto_url)
    report = sync(lake, dest)
    events = _drain(session, moto_url, queue)
    assert report.sent == 24 and len(events) == 24  # 24 consenting customers, PutEvents in chunks of 10
    assert {e["detail-type"] for e in events} == {"SegmentEntered"}
    assert {e["detail"]["customer_id"] for e in events} == {f"C{i:06d}" for i in range(1, 25)}
    assert all("@" not in json.dumps(e["detail"]) for e in events)  # no address in events

    segments = round_robin(25)
    segments["C000001"] = "Hibernating"   # Loyal -> Hibernating
    del segments["C000002"]
    write_rfm(lake, segments)
    sync(lake, dest)
    events = _drain(session, moto_url, queue)
    got = sorted((e["detail-type"], e["detail"]["customer_id"], e["detail"]["segment"]) for e in events)
    assert got == [("SegmentEntered", "C000001", "Hibernating"), ("SegmentExited", "C000001", "Loyal"),
                   ("SegmentExited", "C000002", "At Risk")]
    assert sync(lake, dest).status == "up_to_date"
    assert _drain(session, moto_url, queue) == []


def test_eventbridge_partial_failures_are_retried_per_entry(lake, session, moto_url):
    queue = _queue_for_rule(session, moto_url, "default")
    write_customers(lake, 12)
    write_rfm(lake, round_robin(12))
    real = session.client("events", endpoint_url=moto_url)

    class FlakyClient:
        """Reports the first entry of the first call as throttled (as PutEvents does), forwarding the rest."""

        calls = 0

        def put_events(self, Entries):  # noqa: N803 - the boto3 keyword
            FlakyClient.calls += 1
            if FlakyClient.calls == 1:
                response = real.put_events(Entries=Entries[1:])
                return {"FailedEntryCount": 1, "Entries": [
                    {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}, *response["Entries"]]}
            return real.put_events(Entries=Entries)

    sleeps: list[float] = []
    dest = EventBridgeDestination(batch_size=100, client=FlakyClient())
    report = sync(lake, dest, policy=RetryPolicy(sleep=sleeps.append))
    events = _drain(session, moto_url, queue)
    assert report.sent == 12 and report.failed == 0 and report.retries == 1 and len(sleeps) == 1
    assert sorted(e["detail"]["customer_id"] for e in events) == sorted(round_robin(12))


def test_ses_contacts_subscribed_and_unsubscribed_per_segment_topic(lake, session, moto_url):
    write_customers(lake, 8, no_email={7})
    write_rfm(lake, round_robin(8))
    dest = SesContactListDestination(contact_list="segments", boto3_session=session, endpoint_url=moto_url)
    report = sync(lake, dest)
    assert report.sent == 7 and report.skipped["no_email"] == 1
    ses = session.client("sesv2", endpoint_url=moto_url)
    topics = {t["TopicName"] for t in ses.get_contact_list(ContactListName="segments")["Topics"]}
    assert topics == {"at_risk", "champions", "hibernating", "loyal"}

    def opted_in() -> dict[str, set[str]]:
        contacts = ses.list_contacts(ContactListName="segments")["Contacts"]
        return {c["EmailAddress"]: {p["TopicName"] for p in c["TopicPreferences"] if p["SubscriptionStatus"] == "OPT_IN"}
                for c in contacts}

    state = opted_in()
    assert len(state) == 7 and state["user0@example.com"] == {"champions"} and state["user1@example.com"] == {"loyal"}

    segments = round_robin(8)
    segments["C000001"] = "Champions"
    del segments["C000002"]
    write_rfm(lake, segments)
    second = sync(lake, dest)
    assert second.sent == 2
    state = opted_in()
    assert state["user1@example.com"] == {"champions"}   # moved: out of loyal, into champions
    assert state["user2@example.com"] == set()            # left: unsubscribed from every topic
