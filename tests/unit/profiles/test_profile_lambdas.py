"""The AWS entry points: the API Lambda (Mangum, API Gateway HTTP API events, gateway auth) and the
indexer's event handling, both over the in-memory OpenSearch fake."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import rfmlake.profiles.aws as aws
from rfmlake.errors import ConfigError
from rfmlake.ingest.pii import tokenize
from rfmlake.profiles.opensearch import OpenSearchProfileStore

ROOT = Path(__file__).resolve().parents[3]


def _load_handler(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_handler", ROOT / "lambdas" / name / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(path: str, query: str = "", claims: dict | None = None) -> dict:
    context = {"http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "10.0.0.1",
                        "userAgent": "test"}, "requestId": "r1", "stage": "$default", "accountId": "1",
               "apiId": "a", "domainName": "x", "domainPrefix": "x", "time": "", "timeEpoch": 0, "routeKey": "$default"}
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": {"host": "x"}, "requestContext": context, "isBase64Encoded": False}


@pytest.fixture()
def api_handler(monkeypatch, fake_opensearch, os_client_factory, documents):
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    docs = [dict(d, email_token=tokenize(f"user{i}@example.org", b"lambda-test-key", "email"))
            for i, d in enumerate(documents)]
    store.load_generation(docs, "g1")
    store.activate("g1")
    monkeypatch.setenv("RFMLAKE_PII_KEY", "lambda-test-key")
    monkeypatch.setattr(aws, "store_from_env", lambda env=None, boto3_session=None: store)
    return _load_handler("profile_api").handler


def test_api_lambda_serves_authorized_callers(api_handler):
    response = api_handler(_event("/profiles/c0004", claims={"sub": "app-1"}), None)
    assert response["statusCode"] == 200 and json.loads(response["body"])["customer_id"] == "c0004"
    found = api_handler(_event("/profiles", "email=USER7%40example.org", claims={"sub": "app-1"}), None)
    assert [p["customer_id"] for p in json.loads(found["body"])["items"]] == ["c0007"]


def test_api_lambda_refuses_calls_without_authorizer_context(api_handler):
    response = api_handler(_event("/profiles/c0004"), None)
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "unauthorized"


def _put_version(session, bucket: str, version: str, documents: list[dict]) -> dict:
    """A gold.customer_profile version on S3 (moto) and the S3 event for its pointer."""
    import io

    rows = [{k: v for k, v in d.items() if k not in ("value", "customer_ids")}
            | {"value_json": None, "customer_ids_json": json.dumps(d["customer_ids"])} for d in documents]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    s3 = session.client("s3")
    s3.put_object(Bucket=bucket, Key=f"rfmlake/gold/customer_profile/versions/{version}/part-00000.parquet",
                  Body=buffer.getvalue())
    s3.put_object(Bucket=bucket, Key="rfmlake/gold/customer_profile/_current",
                  Body=json.dumps({"version": version}).encode())
    return {"detail": {"bucket": {"name": bucket}, "object": {"key": "rfmlake/gold/customer_profile/_current"}}}


def test_indexer_loads_a_version_once_then_only_what_changed(aws, fake_opensearch, os_client_factory, documents):
    bucket = "lake-bucket"
    aws.client("s3").create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    event = _put_version(aws, bucket, "20240401T000000Z-ab", documents)
    first = aws_module_handle(event, store, aws)
    assert first["skipped"] is False and first["profiles"] == len(documents) and first["mode"] == "full"
    assert store.active_generation() == "v20240401t000000z-ab"
    assert store.get("c0003")["city"] == documents[3]["city"]
    assert aws_module_handle(event, store, aws) == {"generation": "v20240401t000000z-ab", "skipped": True}

    # The next version: one profile changed, one gone, one new. Only those three travel.
    changed = [dict(d, city="Porto") if d["customer_id"] == "c0003" else d for d in documents
               if d["customer_id"] != "c0007"] + [dict(documents[0], customer_id="c0100", email_token="tok0100")]
    fake_opensearch.requests.clear()
    second = aws_module_handle(_put_version(aws, bucket, "20240402T000000Z-cd", changed), store, aws)
    assert second["mode"] == "incremental" and second["changed"] == 3 and second["profiles"] == len(documents)
    bulk = [body for method, url, body in fake_opensearch.requests if url == "/_bulk"]
    sent = [json.loads(line) for body in bulk for line in body.strip().split("\n")]
    assert [next(iter(a.values()))["_id"] for a in sent if "index" in a or "delete" in a] == [
        "c0007", "c0003", "c0100"]
    assert store.get("c0003")["city"] == "Porto" and store.get("c0007") is None and store.get("c0100") is not None
    assert store.get("c0004") == documents[4]  # carried over by the reindex, not sent again


def aws_module_handle(event, store, session):
    return aws.handle_index_event(event, store, boto3_session=session)


def test_indexer_rejects_unrelated_events():
    with pytest.raises(ConfigError, match="not an S3"):
        aws.profile_version_from_event({"detail": {}})
    with pytest.raises(ConfigError, match="not a gold.customer_profile"):
        aws.profile_version_from_event({"detail": {"bucket": {"name": "b"}, "object": {"key": "x/gold/other/_current"}}})


SECRET = "rfmlake/dev/pii-key"
SECRET_ARN = f"arn:aws:secretsmanager:eu-west-1:123456789012:secret:{SECRET}-AbCdEf"


class _StubbedSession:
    """A boto3 session whose Secrets Manager client is stubbed against botocore's service model."""

    def __init__(self) -> None:
        import boto3
        from botocore.stub import Stubber

        self.secrets = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y",
                                     region_name="eu-west-1").client("secretsmanager")
        self.stub = Stubber(self.secrets)

    def client(self, service: str):
        assert service == "secretsmanager"
        return self.secrets


@pytest.fixture()
def no_cached_secrets(monkeypatch):
    import rfmlake.settings

    monkeypatch.setattr(rfmlake.settings, "_SECRETS", {})
    monkeypatch.delenv("RFMLAKE_PII_KEY", raising=False)


def test_api_reads_the_pii_key_from_its_secret_once_per_environment(no_cached_secrets, fake_opensearch,
                                                                    os_client_factory, documents):
    from mangum import Mangum

    session = _StubbedSession()
    session.stub.add_response("get_secret_value", {"ARN": SECRET_ARN, "Name": SECRET, "SecretString": "sm-key\n"},
                              {"SecretId": SECRET})
    store = OpenSearchProfileStore(os_client_factory(fake_opensearch), alias="p")
    store.load_generation([dict(d, email_token=tokenize(f"user{i}@example.org", b"sm-key", "email"))
                           for i, d in enumerate(documents)], "g1")
    store.activate("g1")
    env = {"RFMLAKE_PII_KEY_SECRET": SECRET}
    with session.stub:
        handler = Mangum(aws.gateway_app(store, env, session), lifespan="off")
        found = handler(_event("/profiles", "email=user7%40example.org", claims={"sub": "app-1"}), None)
        # a second app in the same environment does not ask again (the stub holds one response)
        assert aws.pii_key_from_env(env, session) == b"sm-key"
    session.stub.assert_no_pending_responses()
    assert [p["customer_id"] for p in json.loads(found["body"])["items"]] == ["c0007"]


def test_api_without_a_key_or_a_readable_secret_says_which(no_cached_secrets):
    with pytest.raises(ConfigError, match="set environment variable RFMLAKE_PII_KEY_SECRET"):
        aws.pii_key_from_env({})
    session = _StubbedSession()
    session.stub.add_client_error("get_secret_value", "AccessDeniedException", "not allowed",
                                  expected_params={"SecretId": SECRET})
    with session.stub, pytest.raises(ConfigError, match=f"cannot read Secrets Manager secret '{SECRET}': "
                                                         "AccessDeniedException"):
        aws.pii_key_from_env({"RFMLAKE_PII_KEY_SECRET": SECRET}, session)
    # an explicit key wins, as locally
    assert aws.pii_key_from_env({"RFMLAKE_PII_KEY": "k", "RFMLAKE_PII_KEY_SECRET": SECRET}) == b"k"
