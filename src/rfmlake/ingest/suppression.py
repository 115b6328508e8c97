"""The erasure suppression list at ingestion: rows of erased customers never reach bronze again.

The list (<lake>/_system/governance/suppression.json, written by `rfmlake erase`, read here from a
local or an S3 lake) holds HMAC tokens only: customer ids (kind "user"), emails (kind "email"),
phones (kind "phone"), order ids (kind "user") of erased customers and the devices (anonymous ids,
kind "user") the identity graph joined to them (docs/identity.md). A landed row is suppressed when

- customers: its customer_id, email or phone token is listed;
- orders: its customer_id token is listed;
- events: its customer_id or its anonymous_id token is listed;
- aws_rfm_guidance: its CustomerID token is listed;
- order_items: its order is listed, or is an order of a suppressed customer landed in the same run;
- access_logs: the authenticated user (third field of a Combined Log Format line) is listed;
- any entity: the row could not be read (a corrupt record) and one of its words is a listed id,
  email or phone.

Suppressed rows are not written to the entity's bronze table; `bronze.suppressed_rows` keeps only
(entity, _source_file, _row_hash, _loaded_at) of each, so silver can count them as quarantined
with reason erased_customer and rows in = accepted + quarantined still holds per landing file.
Everything is SQL over the bronze rows (rfmlake.ingest.sql): the token lists are small literals.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from rfmlake.errors import RfmlakeError
from rfmlake.ingest.access_logs import dash_null
from rfmlake.ingest.access_logs import group as access_group
from rfmlake.ingest.sql import clean, col, lit, lit_list, token
from rfmlake.lake import Lake

SUPPRESSION_LIST: tuple[str, ...] = ("governance", "suppression.json")  # under the lake's _system/
SUPPRESSED_TABLE = "suppressed_rows"
SUPPRESSED_COLUMNS: tuple[str, ...] = ("entity", "_source_file", "_row_hash", "_loaded_at")
CORRUPT_COLUMN = "_corrupt_record"
_LIST_KEYS = ("customer_id_tokens", "email_tokens", "phone_tokens", "order_id_tokens", "device_tokens")
# Separators between the words of an unreadable record: CSV/JSON punctuation and whitespace.
_WORD_SEPARATORS = r"""[\s,;|"'{}\[\]:=()<>]+"""


@dataclass(frozen=True)
class Suppression:
    customer_id_tokens: frozenset[str]
    email_tokens: frozenset[str]
    phone_tokens: frozenset[str] = frozenset()
    order_id_tokens: frozenset[str] = frozenset()
    device_tokens: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not (self.customer_id_tokens or self.email_tokens or self.phone_tokens or self.order_id_tokens
                    or self.device_tokens)


def read_suppression_list(lake: Lake) -> dict[str, list[str]]:
    """The stored list as {"customer_id_tokens": [...], "email_tokens": [...], ...}, read through the
    lake's storage, so a Glue job reads it from a lake on S3 as a local run reads it from a folder."""
    data = lake.read_system(*SUPPRESSION_LIST)
    if data is None:
        return {k: [] for k in _LIST_KEYS}
    try:
        parsed = json.loads(data)
        for required in ("customer_id_tokens", "email_tokens"):
            parsed[required]  # noqa: B018 - a list without them is corrupt
        return {k: [str(t) for t in parsed.get(k, [])] for k in _LIST_KEYS}
    except (ValueError, KeyError, TypeError):
        raise RfmlakeError(
            f"suppression list {lake.system_uri(*SUPPRESSION_LIST)} is corrupt; restore it from backup"
        ) from None


def load_suppression(lake: Lake) -> Suppression:
    """The lake's suppression list (empty when nobody was erased)."""
    stored = read_suppression_list(lake)
    return Suppression(*(frozenset(stored[k]) for k in _LIST_KEYS))


def _listed(x: str, key: bytes, kind: str, tokens: frozenset[str]) -> str:
    if not tokens:
        return "false"
    return f"coalesce({token(x, key, kind)} IN ({lit_list(sorted(tokens))}), false)"


def _corrupt_mentions(key: bytes, suppression: Suppression) -> str:
    """A corrupt record with a word that is a listed customer id, email or phone."""
    checks = []
    if suppression.customer_id_tokens:
        checks.append(_listed("w", key, "user", suppression.customer_id_tokens))
    if suppression.email_tokens:
        checks.append(f"(contains(w, '@') AND {_listed('w', key, 'email', suppression.email_tokens)})")
    if suppression.phone_tokens:
        checks.append(f"(regexp_matches(w, '[0-9]{{6,}}') AND {_listed('w', key, 'phone', suppression.phone_tokens)})")
    if not checks:
        return "false"
    words = f"string_split_regex({col(CORRUPT_COLUMN)}, {lit(_WORD_SEPARATORS)})"
    return (f"({col(CORRUPT_COLUMN)} IS NOT NULL AND "
            f"coalesce(array_length(list_filter({words}, w -> {' OR '.join(checks)})), 0) > 0)")


def suppressed_condition(entity_name: str, key: bytes, suppression: Suppression,
                         suppressed_orders: str | None = None) -> str:
    """SQL: true for a bronze row (raw text, lower-case columns) of an erased customer.
    `suppressed_orders`: a relation with one column order_id, the orders of suppressed customers
    landed in this run (for order_items)."""
    ids = suppression.customer_id_tokens
    conditions = [_corrupt_mentions(key, suppression)]
    if entity_name in ("customers", "orders", "events"):
        conditions.append(_listed(col("customer_id"), key, "user", ids))
    if entity_name == "events":
        conditions.append(_listed(col("anonymous_id"), key, "user", suppression.device_tokens))
    if entity_name == "customers":
        conditions.append(_listed(col("email"), key, "email", suppression.email_tokens))
        conditions.append(_listed(col("phone"), key, "phone", suppression.phone_tokens))
    if entity_name == "aws_rfm_guidance":
        conditions.append(_listed(col("customerid"), key, "user", ids))
    if entity_name == "access_logs":
        user = dash_null(access_group(col("line"), 3))
        conditions.append(_listed(user, key, "user", ids))
    if entity_name == "order_items":
        conditions.append(_listed(clean(col("order_id")), key, "user", suppression.order_id_tokens))
        if suppressed_orders is not None:
            order_id = clean(col("order_id"))
            conditions.append(f"coalesce({order_id} IN (SELECT order_id FROM {suppressed_orders}), false)")
    return "(" + " OR ".join(conditions) + ")"
