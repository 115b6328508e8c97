"""The profile indexer and API on AWS: configuration from the environment, the indexer's event
parsing, the API app behind API Gateway (IAM or a JWT authorizer; the app reads who called from
the event). Nothing here creates a client at import time; every AWS call takes `boto3_session`."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rfmlake.errors import ConfigError
from rfmlake.profiles.indexer import IndexReport, index_version
from rfmlake.profiles.opensearch import OpenSearchProfileStore, client_for

if TYPE_CHECKING:
    import boto3
    from fastapi import FastAPI

ENDPOINT_ENV = "RFMLAKE_OPENSEARCH_ENDPOINT"
# DuckDB's share of the indexer Lambda's memory (1 GB in infra): past it DuckDB spills to /tmp, so
# the function holds at most this, one Arrow batch and one bulk request whatever the table size.
INDEXER_DUCKDB_MEMORY = "384MB"
ALIAS_ENV = "RFMLAKE_PROFILES_ALIAS"
# The lake may sit at the bucket's root (infra: gold/customer_profile/...) or under a prefix.
_VERSION_KEY = re.compile(r"^(?P<table>(?:.*/)?gold/customer_profile)/versions/(?P<version>[^/]+)/[^/]+\.parquet$")
_POINTER_KEY = re.compile(r"^(?P<table>(?:.*/)?gold/customer_profile)/_current$")


def _require(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def store_from_env(env: Mapping[str, str] | None = None,
                   boto3_session: boto3.Session | None = None) -> OpenSearchProfileStore:
    env = os.environ if env is None else env
    client = client_for(_require(env, ENDPOINT_ENV), _require(env, "AWS_REGION"), boto3_session)
    return OpenSearchProfileStore(client, alias=env.get(ALIAS_ENV, "rfmlake-profiles"))


def profile_version_from_event(event: dict[str, Any], boto3_session: boto3.Session | None = None) -> str:
    """s3://bucket/<prefix>/gold/customer_profile/versions/<version> from an EventBridge S3
    'Object Created' event for the table's `_current` pointer (read to find the version)."""
    try:
        bucket = event["detail"]["bucket"]["name"]
        key = event["detail"]["object"]["key"]
    except (KeyError, TypeError):
        raise ConfigError(
            "the event is not an S3 'Object Created' event (detail.bucket.name, detail.object.key)"
        ) from None
    match = _VERSION_KEY.match(key)
    if match:
        return f"s3://{bucket}/{match['table']}/versions/{match['version']}"
    match = _POINTER_KEY.match(key)
    if not match:
        raise ConfigError(f"s3://{bucket}/{key} is not a gold.customer_profile version or pointer")
    import boto3 as _boto3

    s3 = (boto3_session or _boto3.Session()).client("s3")
    pointer = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    return f"s3://{bucket}/{match['table']}/versions/{pointer['version']}"


def generation_for(version: str) -> str:
    """One generation per table version: a retried or duplicated event loads nothing twice."""
    return "v" + re.sub(r"[^a-z0-9_.-]", "-", version.lower())[:70]


def handle_index_event(event: dict[str, Any], store: OpenSearchProfileStore | None = None,
                       boto3_session: boto3.Session | None = None) -> dict[str, Any]:
    """Index the committed gold.customer_profile version the event names: DuckDB reads it on S3
    (httpfs) and diffs it against the version the active index holds; only changed profiles are
    sent, in bulk requests (rfmlake.profiles.indexer)."""
    from rfmlake.lake.duck import connect_duckdb
    from rfmlake.lake.duckdb_s3 import enable_s3

    location = profile_version_from_event(event, boto3_session)
    store = store or store_from_env(boto3_session=boto3_session)
    generation = generation_for(location.rsplit("/", 1)[1])
    if generation in store.generations():
        if store.active_generation() != generation:
            store.activate(generation)
        return {"generation": generation, "skipped": True}
    con = connect_duckdb(memory_limit=INDEXER_DUCKDB_MEMORY)
    try:
        enable_s3(con, boto3_session)
        report: IndexReport = index_version(con, location, store, generation=generation)
    finally:
        con.close()
    return {**report.to_dict(), "skipped": False}


def pii_key_from_env(env: Mapping[str, str], boto3_session: boto3.Session | None = None) -> bytes:
    """The PII key the API tokenizes email lookups with: RFMLAKE_PII_KEY (or the variable that
    RFMLAKE_PII_KEY_ENV names), else the Secrets Manager secret RFMLAKE_PII_KEY_SECRET, read once per
    execution environment (the deployed function: the key stays out of its configuration)."""
    from rfmlake.settings import Settings, pii_key

    key_env = env.get("RFMLAKE_PII_KEY_ENV", "RFMLAKE_PII_KEY")
    settings = Settings(pii_key_env=key_env, pii_key_secret=env.get("RFMLAKE_PII_KEY_SECRET") or None)
    key = pii_key(settings, env=env, boto3_session=boto3_session)
    if key is not None:
        return key
    raise ConfigError(f"no PII key: set environment variable RFMLAKE_PII_KEY_SECRET to the Secrets Manager "
                      f"secret holding it (or {key_env} to the key itself)")


def gateway_app(store: OpenSearchProfileStore | None = None, env: Mapping[str, str] | None = None,
                boto3_session: boto3.Session | None = None) -> FastAPI:
    """The profile API for API Gateway: callers were authenticated by IAM or a JWT authorizer."""
    from rfmlake.ingest.pii import tokenize
    from rfmlake.profiles.app import ApiConfig, create_app

    env = os.environ if env is None else env
    pii_key = pii_key_from_env(env, boto3_session)
    config = ApiConfig(auth="gateway", rate_per_second=float(env.get("RFMLAKE_API_RATE", "50")),
                       burst=int(env.get("RFMLAKE_API_BURST", "100")))
    return create_app(store or store_from_env(env, boto3_session), config,
                      lambda email: tokenize(email, pii_key, "email"))
