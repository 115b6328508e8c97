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
    assert set(item["Metrics"]) == {"r_score", "f_score", "m_score", "recency_days", "frequency", "monetary"}


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
