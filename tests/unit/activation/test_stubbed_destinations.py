"""Pinpoint and Customer Profiles with botocore's Stubber: every request is validated against the
service model (moto does not serve these APIs): batching limits, throttling retries, partial failures."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from activation_lakes import round_robin, write_customers, write_rfm
from rfmlake.activation import RetryPolicy, sync
from rfmlake.activation.destinations.customer_profiles import CustomerProfilesDestination
from rfmlake.activation.destinations.pinpoint import PinpointDestination


def _client(service: str):
    return boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1").client(service)


def _policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(max_attempts=4, sleep=sleeps.append)


def _stub_pinpoint_segments(stubber: Stubber, existing: list[dict]) -> None:
    stubber.add_response("get_segments", {"SegmentsResponse": {"Item": existing}},
                         {"ApplicationId": "app1", "PageSize": "100"})


def test_pinpoint_batches_of_100_segments_and_throttling_retry(lake):
    write_customers(lake, 230)
    write_rfm(lake, round_robin(230))
    client = _client("pinpoint")
    sent: list[list[dict]] = []
    with Stubber(client) as stubber:
        _stub_pinpoint_segments(stubber, [{"Name": "rfmlake-champions", "Id": "seg-1", "ApplicationId": "app1",
                                           "Arn": "arn", "CreationDate": "2026-01-01", "SegmentType": "DIMENSIONAL"}])
        for segment in ("At Risk", "Champions", "Hibernating", "Loyal"):
            request = PinpointDestination(application_id="app1", client=client).segment_request(segment)
            if segment == "Champions":
                stubber.add_response("update_segment", {"SegmentResponse": _segment_response("seg-1")},
                                     {"ApplicationId": "app1", "SegmentId": "seg-1", "WriteSegmentRequest": request})
            else:
                stubber.add_response("create_segment", {"SegmentResponse": _segment_response("seg-x")},
                                     {"ApplicationId": "app1", "WriteSegmentRequest": request})
        stubber.add_client_error("update_endpoints_batch", "TooManyRequestsException", "slow down", 429)
        for _ in range(3):  # 230 endpoints -> 100 + 100 + 30
            stubber.add_response("update_endpoints_batch", {"MessageBody": {"Message": "Accepted"}},
                                 {"ApplicationId": "app1", "EndpointBatchRequest": ANY})
        dest = PinpointDestination(application_id="app1", client=client)
        original = client.update_endpoints_batch

        def capture(**kwargs):
            sent.append(kwargs["EndpointBatchRequest"]["Item"])
            return original(**kwargs)

        client.update_endpoints_batch = capture  # type: ignore[method-assign]
        sleeps: list[float] = []
        report = sync(lake, dest, policy=_policy(sleeps))
        stubber.assert_no_pending_responses()
    assert report.sent == 230 and report.retries == 1 and len(sleeps) == 1
    assert [len(items) for items in sent] == [100, 100, 100, 30]  # the throttled call was retried whole
    item = sent[1][0]
    assert item["ChannelType"] == "EMAIL" and item["Address"].endswith("@example.com")
    assert item["Attributes"]["rfm_segment"][0] in ("Champions", "Loyal", "At Risk", "Hibernating")
    assert set(item["Metrics"]) == {"r_score", "f_score", "m_score", "frequency", "monetary"}
    assert set(item["Attributes"]) == {"rfm_segment", "cluster_label", "rfm_cell", "last_order_date"}


def _segment_response(segment_id: str) -> dict:
    return {"ApplicationId": "app1", "Arn": "arn", "CreationDate": "2026-01-01", "Id": segment_id,
            "SegmentType": "DIMENSIONAL"}


def test_pinpoint_rejected_batch_is_bisected_so_only_the_bad_endpoint_is_dead_lettered(lake):
    write_customers(lake, 4)
    write_rfm(lake, round_robin(4))
    client = _client("pinpoint")
    with Stubber(client) as stubber:
        _stub_pinpoint_segments(stubber, [])
        for _ in range(4):
            stubber.add_response("create_segment", {"SegmentResponse": _segment_response("s")},
                                 {"ApplicationId": "app1", "WriteSegmentRequest": ANY})
        bad = {"code": "BadRequestException", "message": "invalid address", "http": 400}
        stubber.add_client_error("update_endpoints_batch", bad["code"], bad["message"], bad["http"])  # [0..3]
        stubber.add_response("update_endpoints_batch", {"MessageBody": {}}, {"ApplicationId": "app1",
                             "EndpointBatchRequest": ANY})  # [0, 1]
        stubber.add_client_error("update_endpoints_batch", bad["code"], bad["message"], bad["http"])  # [2, 3]
        stubber.add_client_error("update_endpoints_batch", bad["code"], bad["message"], bad["http"])  # [2]
        stubber.add_response("update_endpoints_batch", {"MessageBody": {}}, {"ApplicationId": "app1",
                             "EndpointBatchRequest": ANY})  # [3]
        report = sync(lake, PinpointDestination(application_id="app1", client=client), policy=_policy([]))
        stubber.assert_no_pending_responses()
    assert report.sent == 3 and report.failed == 1


def test_pinpoint_batch_limit_is_enforced():
    with pytest.raises(ValueError, match="1..100"):
        PinpointDestination(application_id="a", batch_size=101, client=object())


def test_customer_profiles_object_type_batches_of_10_and_partial_failures(lake):
    write_customers(lake, 23, no_email={5})
    write_rfm(lake, round_robin(23))
    client = _client("customer-profiles")
    dest = CustomerProfilesDestination(domain_name="shop", client=client, batch_size=23)
    with Stubber(client) as stubber:
        stubber.add_response("put_profile_object_type",
                             {"ObjectTypeName": "RfmlakeSegmentMembership", "Description": "d"},
                             {"DomainName": "shop", "ObjectTypeName": "RfmlakeSegmentMembership",
                              "Description": ANY, "AllowProfileCreation": True, "Fields": ANY, "Keys": ANY})
        # 23 customers in one engine batch -> calls of 10, 10, 3
        stubber.add_response("batch_put_profile_object", {"Failed": [
            {"Id": "r2", "Code": 503, "Message": "try again"}, {"Id": "r4", "Code": 400, "Message": "bad field"}]},
            {"DomainName": "shop", "ObjectTypeName": "RfmlakeSegmentMembership", "Items": ANY})
        stubber.add_client_error("batch_put_profile_object", "ThrottlingException", "rate", 429)  # chunk 2
        stubber.add_response("batch_put_profile_object", {"Successful": []},
                             {"DomainName": "shop", "ObjectTypeName": "RfmlakeSegmentMembership", "Items": ANY})
        # one retry round: the 503 record and the throttled chunk (11 records -> 10 + 1), nothing else
        stubber.add_response("batch_put_profile_object", {"Successful": []},
                             {"DomainName": "shop", "ObjectTypeName": "RfmlakeSegmentMembership", "Items": ANY})
        stubber.add_response("batch_put_profile_object", {"Successful": []},
                             {"DomainName": "shop", "ObjectTypeName": "RfmlakeSegmentMembership",
                              "Items": [{"Id": "r0", "Object": ANY}]})
        sleeps: list[float] = []
        report = sync(lake, dest, policy=_policy(sleeps))
        stubber.assert_no_pending_responses()
    # customer C000005 has no email but a phone: the 'any' channel sends it
    assert report.sent == 22 and report.failed == 1
    assert report.retries == 1 and len(sleeps) == 1


def test_customer_profiles_object_is_keyed_on_customer_id():
    from rfmlake.activation.destinations.customer_profiles import object_type_fields

    fields = object_type_fields()
    assert fields["customer_id"]["Target"] == "_profile.AccountNumber"
    assert fields["rfm_segment"]["Target"] == "_profile.Attributes.rfm_segment"


SMS_POOL = "arn:aws:sms-voice:eu-west-1:123456789012:pool/pool-0123456789abcdef0123456789abcdef"


def test_sms_texts_customers_entering_a_segment_through_end_user_messaging(lake):
    """AWS End User Messaging SMS (pinpoint-sms-voice-v2 SendTextMessage), each request validated against
    the service model: only entering the chosen segments sends a text; throttling is retried, an opted-out
    number fails that record only."""
    from rfmlake.activation.destinations.sms import SmsDestination

    write_customers(lake, 8, no_consent={1})
    write_rfm(lake, round_robin(8))  # C0..C7: Champions, Loyal, At Risk, Hibernating, ...
    client = _client("pinpoint-sms-voice-v2")
    dest = SmsDestination(origination_identity=SMS_POOL, message="We miss you! ({segment})", segments="At Risk,Champions",
                          configuration_set="rfmlake-events", client=client)

    def request(customer: str, segment: str) -> dict:
        return {"DestinationPhoneNumber": f"+4670{int(customer[1:]):07d}", "OriginationIdentity": SMS_POOL,
                "MessageBody": f"We miss you! ({segment})", "MessageType": "PROMOTIONAL",
                "ConfigurationSetName": "rfmlake-events",
                "Context": {"rfmlake_customer_id": customer, "rfmlake_segment": segment}}

    with Stubber(client) as stubber:
        # entering Champions: C000000, C000004; At Risk: C000002, C000006 (C000001 has no consent)
        stubber.add_response("send_text_message", {"MessageId": "m0"}, request("C000000", "Champions"))
        stubber.add_client_error("send_text_message", "ThrottlingException", "rate", 429,
                                 expected_params=request("C000002", "At Risk"))
        stubber.add_response("send_text_message", {"MessageId": "m4"}, request("C000004", "Champions"))
        stubber.add_client_error("send_text_message", "ValidationException", "destination is opted out", 400,
                                 expected_params=request("C000006", "At Risk"))
        stubber.add_response("send_text_message", {"MessageId": "m2"}, request("C000002", "At Risk"))  # retried
        report = sync(lake, dest, policy=_policy([]))
        stubber.assert_no_pending_responses()
    assert report.failed == 1 and report.retries == 1
    assert report.sent == 6  # the 7 consenting customers minus the opted-out one; Loyal/Hibernating send nothing


@pytest.mark.parametrize(("options", "message"), [
    ({"origination_identity": "+46700000000", "message": "hi"}, "origination_identity"),
    ({"origination_identity": SMS_POOL, "message": "hi {name}"}, "may name only {segment}"),
    ({"origination_identity": SMS_POOL, "message": "x" * 1601}, "1..1600"),
    ({"origination_identity": SMS_POOL, "message": "hi", "message_type": "MARKETING"}, "message_type"),
])
def test_sms_settings_are_checked(options: dict, message: str):
    from rfmlake.activation.destinations.sms import SmsDestination

    with pytest.raises(ValueError, match=message):
        SmsDestination(client=object(), **options)
