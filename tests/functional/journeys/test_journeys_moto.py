"""Journey sends against moto in server mode: SES v2 really receives the emails (read back from the
server's model data) and EventBridge the events (a rule puts them into SQS, read back); a rerun
sends nothing again."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

import boto3
import pytest

from aws_lake import moto_server
from journey_lakes import NOON, JourneyLake, customer_ids, journey_set, win_back
from rfmlake.settings import load_settings

SENDER = "news@shop.example.com"


@pytest.fixture(scope="module")
def moto_url():  # noqa: ANN201 - the server's URL
    with moto_server() as url:
        yield url


@pytest.fixture()
def session(moto_url: str) -> boto3.Session:
    urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"))
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1")


def _sent_emails(url: str) -> list[dict]:
    with urllib.request.urlopen(f"{url}/moto-api/data.json") as response:
        data = json.loads(response.read())
    return [m for m in data.get("ses", {}).get("Message", []) if m.get("source") == SENDER]


def _events(session: boto3.Session, url: str, queue: str) -> list[dict]:
    sqs = session.client("sqs", endpoint_url=url)
    out = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])


def test_emails_reach_ses_and_events_reach_eventbridge_once(lake, session: boto3.Session, moto_url: str) -> None:
    ses = session.client("sesv2", endpoint_url=moto_url)
    ses.create_email_identity(EmailIdentity=SENDER)
    events = session.client("events", endpoint_url=moto_url)
    sqs = session.client("sqs", endpoint_url=moto_url)
    events.create_event_bus(Name="crm")
    queue = sqs.create_queue(QueueName="journey-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="journeys", EventBusName="crm", EventPattern=json.dumps({"source": ["rfmlake.journeys"]}))
    events.put_targets(Rule="journeys", EventBusName="crm", Targets=[{"Id": "q", "Arn": arn}])

    shop = JourneyLake(lake, 30, no_consent={5}, no_email={7})
    shop.score(NOON.date(), {c: ("At Risk" if i < 20 else "Loyal") for i, c in enumerate(customer_ids(30))})
    settings = load_settings(None, {"journeys.email.destination": "ses", "journeys.email.from_address": SENDER,
                                    "journeys.event.destination": "eventbridge", "journeys.event.event_bus": "crm"})
    journeys = journey_set(win_back(holdout_percent=25, steps=[
        {"id": "offer", "email": {"template": "offer"}}, {"id": "tell_crm", "event": {"detail_type": "WinBack"}}]))
    run = _run(lake, settings, journeys, session, moto_url)
    entries = {e["customer_id"]: e["variant"] for e in run}
    treated = {c for c, v in entries.items() if v != "holdout"}
    assert set(entries) == set(customer_ids(20)) - {"C000005"} and treated and len(treated) < len(entries)

    emails = _sent_emails(moto_url)
    recipients = Counter(address for m in emails for address in m["destinations"]["ToAddresses"])
    assert set(recipients) == {f"user{int(c[1:])}@example.com" for c in treated - {"C000007"}}
    assert max(recipients.values()) == 1
    assert {m["subject"] for m in emails} == {"Hello At Risk"}
    assert all(m["body"].startswith("Come back, C0000") for m in emails)
    received = _events(session, moto_url, queue)
    assert sorted(e["detail"]["customer_id"] for e in received) == sorted(treated)
    assert {e["detail-type"] for e in received} == {"WinBack"}
    assert all("@" not in json.dumps(e["detail"]) for e in received)

    _run(lake, settings, journeys, session, moto_url)  # the same as_of again
    assert len(_sent_emails(moto_url)) == len(emails) and _events(session, moto_url, queue) == []


def _run(lake, settings, journeys, session, url):  # noqa: ANN001, ANN202
    from rfmlake.journeys.channels import build_senders
    from rfmlake.journeys.engine import advance
    from rfmlake.journeys.store import JourneyStore

    senders = build_senders(settings.journeys, lake.location, boto3_session=session, endpoint_url=url)
    advance(lake, journeys, senders, settings=settings, now=NOON)
    return JourneyStore(lake.location).entries().to_pylist()
