"""Tokens governance stores instead of personal data (audit entries, suppression list)."""

from __future__ import annotations

from rfmlake.ingest.pii import resolve_pii_key, tokenize
from rfmlake.lake.tables import Lake
from rfmlake.settings import Settings


def lake_key(lake: Lake, settings: Settings | None = None) -> bytes:
    return resolve_pii_key(lake, settings or Settings())


def customer_id_token(customer_id: str, key: bytes) -> str:
    token = tokenize(customer_id, key, "user")
    if token is None:
        raise ValueError("customer id is empty")
    return token
