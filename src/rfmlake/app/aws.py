"""The app on AWS (lambdas/marketing_app behind an API Gateway HTTP API): the lake on S3 with its
Glue catalog, sign-in against the Cognito user pool, the session key from Secrets Manager.

Environment (set by infra/rfmlake_infra/marketing_app.py):
  RFMLAKE_LAKE                  s3://<lake bucket>/
  RFMLAKE_CONFIG                the deployed settings (s3://<artifacts>/config/settings.yaml)
  RFMLAKE_COGNITO_USER_POOL_ID  the user pool; its groups analyst, marketer, admin are the roles
  RFMLAKE_COGNITO_CLIENT_ID     the app client (USER_PASSWORD_AUTH, no client secret)
  RFMLAKE_APP_SESSION_SECRET    the Secrets Manager secret holding the session cookie key (or
                                RFMLAKE_APP_SESSION_KEY, the key itself: tests, a container run locally)
  RFMLAKE_JOURNEYS_DIR          optional: the journeys folder (s3://...); else settings journeys.dir
  RFMLAKE_LAKEFORMATION_DIR     the governance YAML shipped in the image (personas and column tags)
  RFMLAKE_AWS_ENDPOINT_URL      optional: a test endpoint for Cognito and Secrets Manager, unset on AWS
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from fastapi import FastAPI

from rfmlake.errors import ConfigError

if TYPE_CHECKING:
    import boto3


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"the marketing app needs the environment variable {name}")
    return value


def _secret(secret_id: str, boto3_session: boto3.Session | None, endpoint_url: str | None) -> str:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client = (boto3_session or boto3.Session()).client("secretsmanager", endpoint_url=endpoint_url)
    try:
        value = client.get_secret_value(SecretId=secret_id).get("SecretString") or ""
    except (ClientError, BotoCoreError) as exc:
        raise ConfigError(f"cannot read the app's session secret {secret_id!r}: {type(exc).__name__}") from None
    if len(value.strip()) < 32:
        raise ConfigError(f"the app's session secret {secret_id!r} must hold at least 32 characters")
    return value.strip()


def gateway_app(env: Mapping[str, str] | None = None, boto3_session: boto3.Session | None = None) -> FastAPI:
    from rfmlake.app.auth import CognitoUsers
    from rfmlake.app.journeys import journeys_port
    from rfmlake.app.web import AppConfig, create_app
    from rfmlake.lake import open_lake
    from rfmlake.settings import load_settings

    env = os.environ if env is None else env
    endpoint = env.get("RFMLAKE_AWS_ENDPOINT_URL") or None
    settings = load_settings(env.get("RFMLAKE_CONFIG") or None)
    lake = open_lake(_required(env, "RFMLAKE_LAKE"), settings, boto3_session=boto3_session)
    users = CognitoUsers(_required(env, "RFMLAKE_COGNITO_USER_POOL_ID"), _required(env, "RFMLAKE_COGNITO_CLIENT_ID"),
                         boto3_session=boto3_session, endpoint_url=endpoint)
    key = env.get("RFMLAKE_APP_SESSION_KEY") or _secret(_required(env, "RFMLAKE_APP_SESSION_SECRET"),
                                                         boto3_session, endpoint)
    return create_app(AppConfig(lake=lake, settings=settings, authenticator=users, secret_key=key, https_only=True,
                                journeys=journeys_port(lake, settings, env.get("RFMLAKE_JOURNEYS_DIR") or None)))
