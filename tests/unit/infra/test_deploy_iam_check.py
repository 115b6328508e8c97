"""rfmlake.deploy.iam_check on small policies: the evaluator decides like IAM (conditions, explicit deny,
bucket policies), requests map to the resources AWS authorizes them against, unmapped calls are refused."""

from __future__ import annotations

import pytest

from rfmlake.deploy.iam_check import ApiCall, Role, call_from_request, denials, with_implied_calls
from rfmlake.errors import ConfigError

pytest.importorskip("principalmapper")

ARN = "arn:aws:iam::123456789012:role/r"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def role(*statements: dict) -> Role:
    return Role("Stack", "R", ARN, TRUST, list(statements))


LIST_GOLD = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::lake",
             "Condition": {"StringLike": {"s3:prefix": ["gold/*", ""]}}}


def test_conditions_and_explicit_denies_decide() -> None:
    r = role(LIST_GOLD, {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::lake/*"},
             {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::lake/gold/*"})
    allowed = [ApiCall.of("s3:ListBucket", "arn:aws:s3:::lake", s3__prefix="gold/t/"),
               ApiCall.of("s3:GetObject", "arn:aws:s3:::lake/gold/t/x")]
    refused = [ApiCall.of("s3:ListBucket", "arn:aws:s3:::lake", s3__prefix="bronze/"),
               ApiCall.of("s3:GetBucketLocation", "arn:aws:s3:::lake"),
               ApiCall.of("s3:DeleteObject", "arn:aws:s3:::lake/gold/t/x")]
    assert denials(r, allowed) == []
    assert [d.call for d in denials(r, refused)] == refused


def test_a_bucket_policy_can_allow_and_its_tls_deny_holds() -> None:
    bucket_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ARN}, "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}
    call = ApiCall.of("s3:DeleteObject", "arn:aws:s3:::b/k")
    assert denials(role(), [call], bucket_policies={"b": bucket_policy}) == []
    assert len(denials(role(), [call])) == 1


def test_requests_map_to_the_resources_aws_checks() -> None:
    where = {"region": "eu-west-1", "account": "123456789012"}
    call = call_from_request("glue", "UpdateTable", {"DatabaseName": "db", "TableInput": {"Name": "t"}}, **where)
    assert call.resources == ("arn:aws:glue:eu-west-1:123456789012:catalog",
                              "arn:aws:glue:eu-west-1:123456789012:database/db",
                              "arn:aws:glue:eu-west-1:123456789012:table/db/t")
    events = call_from_request("events", "PutEvents", {"Entries": [{"EventBusName": "b"}, {}]}, **where)
    assert events.resources == ("arn:aws:events:eu-west-1:123456789012:event-bus/b",
                                "arn:aws:events:eu-west-1:123456789012:event-bus/default")
    email = call_from_request("email", "SendEmail", {"FromEmailAddress": "Shop <news@shop.example.com>",
                                                     "ConfigurationSetName": "journeys",
                                                     "ListManagementOptions": {"ContactListName": "customers"}}, **where)
    assert email.resources == ("arn:aws:ses:eu-west-1:123456789012:identity/news@shop.example.com",
                               "arn:aws:ses:eu-west-1:123456789012:configuration-set/journeys",
                               "arn:aws:ses:eu-west-1:123456789012:contact-list/customers")
    assert call_from_request("sts", "GetCallerIdentity", {}, **where) is None
    with pytest.raises(ConfigError, match="cannot tell which resources kinesis:PutRecord"):
        call_from_request("kinesis", "PutRecord", {"StreamName": "s"}, **where)


def test_objects_of_kms_buckets_need_the_key() -> None:
    key = "arn:aws:kms:eu-west-1:123456789012:key/k"
    calls = with_implied_calls([ApiCall.of("s3:PutObject", "arn:aws:s3:::lake/gold/x"),
                                ApiCall.of("s3:GetObject", "arn:aws:s3:::logs/x")], {"lake": key})
    assert {(c.action, c.resources) for c in calls[2:]} == {("kms:Decrypt", (key,)), ("kms:GenerateDataKey", (key,))}
