"""The profile API wired for one machine: the lake's embedded store, hashed keys under the lake."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from rfmlake.ingest.pii import resolve_pii_key, tokenize
from rfmlake.lake import Lake
from rfmlake.profiles.app import ApiConfig, create_app
from rfmlake.profiles.auth import ApiKeyRing
from rfmlake.profiles.indexer import embedded_store
from rfmlake.settings import Settings


def keys_file(lake: Lake) -> Path:
    return lake.system_dir / "api_keys.json"


def local_app(lake: Lake, settings: Settings, *, rate_per_second: float = 50.0, burst: int = 100,
              public_schema: bool = False, failed_key_rate: float = 0.1, failed_key_burst: int = 10) -> FastAPI:
    key = resolve_pii_key(lake, settings)
    config = ApiConfig(auth="api_key", keys=ApiKeyRing.load(keys_file(lake)), rate_per_second=rate_per_second,
                       burst=burst, public_schema=public_schema, failed_key_rate=failed_key_rate,
                       failed_key_burst=failed_key_burst)
    return create_app(embedded_store(lake), config, lambda email: tokenize(email, key, "email"))


def curl_hint(lake: Lake, cli: str, port: int = 8000) -> list[str]:
    """The commands that query one of the lake's profiles over HTTP (for `rfmlake demo`)."""
    from rfmlake.profiles.store import ProfileQuery, ProfileStoreError

    try:
        items = embedded_store(lake).search(ProfileQuery(segment="Champions", limit=1)).items or \
            embedded_store(lake).search(ProfileQuery(limit=1)).items
    except ProfileStoreError:
        items = []
    customer_id = items[0]["customer_id"] if items else "CUSTOMER_ID"
    base = f"http://127.0.0.1:{port}"
    return [
        f"KEY=$({cli} profiles create-key --lake {lake.root} --name demo-$RANDOM)",
        f"{cli} serve --lake {lake.root} --port {port} &",
        f'curl -s -H "X-API-Key: $KEY" {base}/profiles/{customer_id}',
        f'curl -s -H "X-API-Key: $KEY" "{base}/segments/Champions/members?limit=5"',
        f'curl -s -H "X-API-Key: $KEY" {base}/openapi.json   # the OpenAPI document (UI: /docs)',
    ]
