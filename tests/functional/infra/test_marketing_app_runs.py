"""The marketing app's Lambda of the synthesized app, run here as API Gateway invokes it: its handler
(lambdas/marketing_app, Mangum) with the environment the stack gives it, against a moto server holding
the lake bucket (Glue catalog pointers, gold tables, the quarantine, and the summary of a run that the
state machine's summary step wrote), the deployed settings, the session key secret and a Cognito user
pool with the app's groups. A marketer signs in through Cognito, reads
segments and runs, builds and saves an audience (gold.audiences committed on S3 through Glue); an
admin reads the audit log. Every AWS call it made is allowed by the function's synthesized role, in
every environment of config/ (the IAM check, rfmlake.deploy.iam_check)."""

from __future__ import annotations

import base64
import functools
import importlib.util
import os
import re
import urllib.parse
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

import pytest

from activation_lakes import round_robin, write_customers, write_rfm
from app_lakes import write_ingest_results
from aws_calls import assert_role_allows, recorded
from infra_synth import REPO, Synth
from rfmlake.audiences import load_audiences
from rfmlake.deploy.journeys import seed_journeys
from rfmlake.lake import open_lake
from rfmlake.pipeline.remote import handle_event
from rfmlake.pipeline.trigger import execution_name
from rfmlake.settings import load_settings
from state_machine_walk import walk

PASSWORD = "Marketing-pass-2026"


class Browser:
    """API Gateway HTTP API (payload 2.0) events for the handler, with the cookies a browser keeps."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []

    def request(self, method: str, path: str, form: dict[str, Any] | None = None) -> tuple[int, dict, str]:
        path, _, query = path.partition("?")
        body = urllib.parse.urlencode(form or {}, doseq=True)
        event = {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "cookies": [f"{k}={v}" for k, v in self.cookies.items()],
            "headers": {"host": "app.example.com", "x-forwarded-proto": "https",
                        **({"content-type": "application/x-www-form-urlencoded"} if form is not None else {})},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "203.0.113.9", "userAgent": "test"},
                               "requestId": "r", "stage": "$default", "accountId": "123456789012", "apiId": "a",
                               "domainName": "app.example.com", "domainPrefix": "app", "time": "", "timeEpoch": 0,
                               "routeKey": "$default"},
            "body": body if form is not None else None, "isBase64Encoded": False,
        }
        response = self.handler(event, None)
        self.set_cookies += response.get("cookies", [])
        for header in response.get("cookies", []):
            cookie = SimpleCookie(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        text = response.get("body") or ""
        if response.get("isBase64Encoded"):
            text = base64.b64decode(text).decode()
        return response["statusCode"], response.get("headers", {}), text


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_the_deployed_app_signs_in_with_cognito_and_saves_an_audience_on_s3(
        synth_env: Synth, aws, monkeypatch: pytest.MonkeyPatch) -> None:
    synth = synth_env  # every environment of config/
    app, environment = synth.platform.marketing_app, synth.platform.environment
    storage = synth.platform.storage
    s3 = aws.client("s3")
    lake_bucket, artifacts = f"{synth.env}-lake", f"{synth.env}-artifacts"
    for bucket in (lake_bucket, artifacts):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    for zone in ("bronze", "silver", "gold"):
        aws.client("glue").create_database(DatabaseInput={"Name": f"{environment.prefix}_{zone}"})
    tokens = {storage.lake.bucket_name: lake_bucket, storage.artifacts.bucket_name: artifacts}  # CDK tokens
    settings_text = synth.platform.compute.settings_text  # as BucketDeployment writes it: the bucket filled in
    for token_, real in tokens.items():
        settings_text = settings_text.replace(token_, real)
    s3.put_object(Bucket=artifacts, Key="config/settings.yaml", Body=settings_text.encode())
    # the journeys the app edits, as `rfmlake deploy` seeds the folder the settings name
    seed_journeys(REPO / "journeys", load_settings(f"s3://{artifacts}/config/settings.yaml").journeys.dir,
                  boto3_session=aws)
    lake = open_lake(f"s3://{lake_bucket}/", load_settings(overrides={"prefix": environment.prefix}),
                     boto3_session=aws)
    write_customers(lake, 8, no_consent={0})
    write_rfm(lake, round_robin(8))
    write_ingest_results(lake, {"orders": {"bad_type": 3}})
    # A run as the deployed state machine leaves it: its summary state hands the execution to the summary step.
    run_id = execution_name(["s3://dev-landing/orders/orders.csv"], datetime(2026, 12, 1, 3, tzinfo=UTC))
    # every step the state machine runs on the stage Lambda (the run's start, its summary)
    summarize = functools.partial(handle_event, env={"RFMLAKE_LAKE": f"s3://{lake_bucket}/",
                                                     "RFMLAKE_CONFIG": f"s3://{artifacts}/config/settings.yaml"})
    walked = walk(synth.platform.orchestration.definition, execution_name=run_id,
                  started_at=datetime(2026, 12, 1, 3, tzinfo=UTC), seconds={"ingest_bronze": 12.5}, invoke=summarize)
    assert walked.end == "RunSucceeded"
    cognito = aws.client("cognito-idp")
    pool = cognito.create_user_pool(PoolName=f"{environment.resource_prefix}-marketing-app")["UserPool"]["Id"]
    client = cognito.create_user_pool_client(UserPoolId=pool, ClientName=f"{environment.resource_prefix}-marketing-app",
                                             ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"])["UserPoolClient"]
    for user, group in (("mia", "marketer"), ("ada", "admin")):
        cognito.create_group(GroupName=group, UserPoolId=pool)
        cognito.admin_create_user(UserPoolId=pool, Username=user, TemporaryPassword="Temporary-pass-1")
        cognito.admin_set_user_password(UserPoolId=pool, Username=user, Password=PASSWORD, Permanent=True)
        cognito.admin_add_user_to_group(UserPoolId=pool, Username=user, GroupName=group)
    secret = aws.client("secretsmanager").create_secret(Name=app.session_secret_name, SecretString="k" * 64)["Name"]

    for name, value in app.function_env.items():  # CDK tokens of the buckets -> the test's buckets
        for token_, real in tokens.items():
            value = value.replace(token_, real)
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RFMLAKE_COGNITO_USER_POOL_ID", pool)
    monkeypatch.setenv("RFMLAKE_COGNITO_CLIENT_ID", client["ClientId"])
    assert os.environ["RFMLAKE_APP_SESSION_SECRET"] == secret  # the stack names the secret it creates
    monkeypatch.setenv("RFMLAKE_AWS_ENDPOINT_URL", os.environ["AWS_ENDPOINT_URL"])
    assert os.environ["RFMLAKE_LAKE"] == f"s3://{lake_bucket}/"
    assert os.environ["RFMLAKE_CONFIG"] == f"s3://{artifacts}/config/settings.yaml"
    assert "RFMLAKE_JOURNEYS_DIR" not in app.function_env  # the folder comes from the settings' journeys.dir
    spec = importlib.util.spec_from_file_location("marketing_app_handler", REPO / "lambdas" / "marketing_app" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    marketer, admin = Browser(module.handler), Browser(module.handler)
    buckets = {lake_bucket: storage.lake, artifacts: storage.artifacts}

    with recorded(os.environ["AWS_ENDPOINT_URL"]) as starting:  # the cold start: settings, session key
        status, _, page = marketer.request("GET", "/login")
    assert status == 200
    assert_role_allows(synth, app, app.role, starting, buckets=buckets, source="marketing app: cold start")
    # Sign-in: InitiateAuth is unauthenticated (no IAM) and the pool's keys are public.
    status, headers, _ = marketer.request("POST", "/login", {"username": "mia", "password": PASSWORD,
                                                             "csrf_token": token(page), "next": "/segments"})
    assert (status, headers["location"]) == (303, "/segments")
    assert "secure" in marketer.set_cookies[-1].lower() and "httponly" in marketer.set_cookies[-1].lower()

    with recorded(os.environ["AWS_ENDPOINT_URL"]) as working:
        status, _, page = marketer.request("GET", "/segments")
        assert status == 200 and 'data-testid="segment-table"' in page and "Champions" in page
        status, _, page = marketer.request("GET", "/audiences/new")
        csrf = token(page)
        status, _, page = marketer.request("POST", "/audiences/preview",
                                           {"segments": ["Champions", "Loyal"], "consent": "any", "csrf_token": csrf})
        assert re.search(r'data-testid="audience-count">4<', page)  # round robin: 2 of each of 4 segments
        status, headers, _ = marketer.request("POST", "/audiences", {"segments": ["Champions", "Loyal"],
                                                                     "consent": "any", "name": "Best two",
                                                                     "csrf_token": csrf})
        assert (status, headers.get("location")) == (303, "/audiences/best_two")
        status, _, page = marketer.request("GET", "/runs")
        assert status == 200 and run_id in page and 'class="status succeeded"' in page
        assert 'class="status running"' not in page
        status, _, page = marketer.request("GET", f"/runs/{run_id}")
        assert status == 200 and "bad_type" in page and "12.5" in page
        # a journey from a template of the journeys folder, for the saved audience, then started
        status, _, page = marketer.request("GET", "/journeys/new")
        assert status == 200 and "win_back_at_risk" in page
        status, headers, _ = marketer.request("POST", "/journeys", {
            "name": "Best two back", "template": "win_back_at_risk", "audience": "best_two",
            "holdout_percent": "10", "variants": "A=100", "csrf_token": token(page)})
        assert (status, headers.get("location")) == (303, "/journeys/best_two_back")
        status, _, page = marketer.request("GET", "/journeys/best_two_back")
        status, headers, _ = marketer.request("POST", "/journeys/best_two_back/start", {"csrf_token": token(page)})
        assert status == 303
    status, _, page = admin.request("GET", "/login")
    admin.request("POST", "/login", {"username": "ada", "password": PASSWORD, "csrf_token": token(page)})
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as reading:
        status, _, page = admin.request("GET", "/audit")
        assert status == 200 and "audience.save" in page and "best_two" in page
        status, _, page = admin.request("GET", "/customers/C000001")
        assert status == 200 and "user1@example.com" in page.lower()  # the admin's persona reads contact details
    calls = assert_role_allows(synth, app, app.role, working + reading, buckets=buckets, source="marketing app")
    actions = {c.action for c in calls}
    assert {"s3:PutObject", "s3:GetObject", "glue:GetTable"} <= actions and actions & {"glue:CreateTable",
                                                                                      "glue:UpdateTable"}
    (saved,) = load_audiences(open_lake(f"s3://{lake_bucket}/", load_settings(overrides={"prefix": environment.prefix}),
                                        boto3_session=aws))
    assert (saved.audience_id, saved.customers, saved.updated_by) == ("best_two", 4, "mia")
    started = aws.client("s3").get_object(Bucket=artifacts, Key="journeys/best_two_back.yaml")["Body"].read()
    assert b"status: active" in started
