"""The profile indexer and the profile API of the synthesized app, run here as their triggers call them: the
handlers (lambdas/profile_indexer, lambdas/profile_api) with the environment the serving stack gives them,
against a moto server holding the lake bucket under its deployed name and the PII key secret. Every AWS call
they make is recorded on the moto server and evaluated against the function's synthesized role (the IAM
check, rfmlake.deploy.iam_check), in every environment of config/.

moto has no OpenSearch data plane: the store is the in-memory OpenSearch of the profile tests (at the
opensearch-py connection), whose every request is turned into the es:ESHttp* call the domain authorizes
and evaluated too."""

from __future__ import annotations

import importlib.util
import io
import json
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aws_calls import assert_calls_allowed, assert_role_allows, denials_without, recorded
from infra_synth import REPO, Synth
from rfmlake.deploy.cfn import Templates
from rfmlake.deploy.iam_check import ApiCall
from rfmlake.profiles.opensearch import OpenSearchProfileStore

VERSION = "20261201T030000Z-abc123"


def _load(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RecordingOpenSearch:
    """The profile tests' in-memory OpenSearch, keeping each request as the es:ESHttp* call it is."""

    def __init__(self, domain_arn: str) -> None:
        fakes = _load("tests/unit/profiles/conftest.py", "profile_fakes")
        self.fake, self.make_client, self.documents = fakes.FakeOpenSearch(), fakes.make_client, fakes.sample_documents
        self.domain_arn = domain_arn
        self.calls: list[ApiCall] = []
        handle = self.fake.handle

        def recording(method: str, url: str, body: bytes | None, params: dict[str, Any] | None = None) -> Any:
            self.calls.append(ApiCall.of(f"es:ESHttp{method.title()}", f"{domain_arn}{url}",
                                         source=f"OpenSearch {method} {url}"))
            return handle(method, url, body, params)

        self.fake.handle = recording

    def store(self, alias: str) -> OpenSearchProfileStore:
        return OpenSearchProfileStore(self.make_client(self.fake), alias=alias)


def deployed_env(synth: Synth, function: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    serving = synth.platform.serving
    deploy = synth.platform.environment.deploy
    templates = Templates(synth.templates, account=deploy.account or "123456789012", region=deploy.region)
    (props,) = [r["Properties"] for s, logical, r in templates.resources("AWS::Lambda::Function")
                if s == serving.stack_name and logical == serving.get_logical_id(function.node.default_child)]
    env = templates.resolve(serving.stack_name, props["Environment"]["Variables"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def test_the_indexer_and_the_api_call_only_what_their_roles_allow(
        synth_env: Synth, aws, monkeypatch: pytest.MonkeyPatch) -> None:
    platform = synth_env.platform
    serving, storage, deploy = platform.serving, platform.storage, platform.environment.deploy
    templates = Templates(synth_env.templates, account=deploy.account or "123456789012", region=deploy.region)
    lake = templates.physical_name(storage.stack_name, storage.get_logical_id(storage.lake.node.default_child))
    domain = f"arn:aws:es:{templates.region}:{templates.account}:domain/{serving.domain_name}"
    opensearch = RecordingOpenSearch(domain)
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=lake, CreateBucketConfiguration={"LocationConstraint": deploy.region})

    # -- the indexer: a gold.customer_profile version committed at the lake bucket's root ---------------
    env = deployed_env(synth_env, serving.indexer, monkeypatch)
    store = opensearch.store(env["RFMLAKE_PROFILES_ALIAS"])
    monkeypatch.setattr("rfmlake.profiles.aws.store_from_env", lambda env=None, boto3_session=None: store)
    documents = opensearch.documents(12)
    rows = [{k: v for k, v in d.items() if k not in ("value", "customer_ids")}
            | {"value_json": None, "customer_ids_json": json.dumps(d["customer_ids"])} for d in documents]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    s3.put_object(Bucket=lake, Key=f"gold/customer_profile/versions/{VERSION}/part-00000.parquet", Body=buffer.getvalue())
    s3.put_object(Bucket=lake, Key="gold/customer_profile/_current", Body=json.dumps({"version": VERSION}).encode())
    event = {"source": "aws.s3", "detail-type": "Object Created",
             "detail": {"bucket": {"name": lake}, "object": {"key": "gold/customer_profile/_current"}}}
    indexer = _load("lambdas/profile_indexer/handler.py", "profile_indexer_handler").handler
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        result = indexer(event, None)
    assert result["profiles"] == 12 and not result["skipped"]
    calls = assert_role_allows(synth_env, serving, serving.indexer_role, requests, source="profile indexer",
                               buckets={lake: storage.lake})
    assert {"s3:GetObject", "kms:Decrypt"} <= {c.action for c in calls}  # the pointer, the version (DuckDB)
    indexed = assert_calls_allowed(synth_env, serving, serving.indexer_role, opensearch.calls)
    assert {"es:ESHttpPut", "es:ESHttpPost", "es:ESHttpGet"} <= {c.action for c in indexed}

    # -- the API: cold start (the PII key from its secret), a profile, an email lookup -------------------
    for name in list(env):
        monkeypatch.delenv(name)
    env = deployed_env(synth_env, serving.api_function, monkeypatch)
    monkeypatch.delenv("RFMLAKE_PII_KEY")
    aws.client("secretsmanager").create_secret(Name=env["RFMLAKE_PII_KEY_SECRET"], SecretString="api-test-key")
    monkeypatch.setattr("rfmlake.settings._SECRETS", {})
    opensearch.calls.clear()
    api = _load("lambdas/profile_api/handler.py", "profile_api_handler").handler
    probe = _load("tests/lambda_probe.py", "lambda_probe_events")
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        response = api(probe._http_get("/profiles/c0003"), probe.Context())
    assert response["statusCode"] == 200 and json.loads(response["body"])["customer_id"] == "c0003"
    calls = assert_role_allows(synth_env, serving, serving.api_role, requests, source="profile API: cold start",
                               buckets={})
    assert {c.action for c in calls} == {"secretsmanager:GetSecretValue"}
    served = assert_calls_allowed(synth_env, serving, serving.api_role, opensearch.calls)
    assert served and {c.action for c in served} <= {"es:ESHttpGet", "es:ESHttpPost"}
    # A fault put back: the API role without its secret statement fails at cold start, named.
    (missing,) = denials_without(synth_env, serving, serving.api_role, calls, {"PiiKeySecretRead"})
    assert missing.startswith(f"{serving.stack_name}/ApiRole") and "profile API: cold start" in missing
    assert " may not secretsmanager:GetSecretValue on " in missing
