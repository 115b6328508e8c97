"""The erasure suppression list at ingestion: rows of erased customers never reach bronze again.

Bronze is rebuilt from landing on every run, so without this hook a re-run would bring an erased
customer back. The list (<lake>/_system/governance/suppression.json, written by `rfmlake erase` on a
local lake, read here from a local or an S3 lake) holds HMAC tokens only: customer ids (kind "user")
and emails (kind "email"). A landed row is suppressed when

- customers: its customer_id token or its email token is listed;
- orders, events: its customer_id token is listed;
- aws_rfm_guidance: its CustomerID token is listed;
- order_items: its order is one of the suppressed orders (or guidance purchases) of this run;
- access_logs: the authenticated user (third field of a Combined Log Format line) is listed;
- any entity: the row could not be read (a corrupt record) and one of its words is a listed id
  or email.

Suppressed rows are not written to the entity's bronze table; `bronze.suppressed_rows` keeps only
(entity, _source_file, _row_hash, _loaded_at) of each, so silver can count them as quarantined
with reason erased_customer and rows in = accepted + quarantined still holds per landing file.
Everything is native Spark expressions: the token sets are small and travel with the plan as
literal sets (Spark's InSet, a hash lookup per row), broadcast to every task by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rfmlake.errors import RfmlakeError
from rfmlake.ingest.access_logs import COMBINED_LOG_FORMAT
from rfmlake.ingest.pii import token_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from rfmlake.lake import Lake

SUPPRESSION_LIST: tuple[str, ...] = ("governance", "suppression.json")  # under the lake's _system/
SUPPRESSED_TABLE = "suppressed_rows"
SUPPRESSED_COLUMNS: tuple[str, ...] = ("entity", "_source_file", "_row_hash", "_loaded_at")
CORRUPT_COLUMN = "_corrupt_record"
# Separators between the words of an unreadable record: CSV/JSON punctuation and whitespace.
_WORD_SEPARATORS = r"""[\s,;|"'{}\[\]:=()<>]+"""


@dataclass(frozen=True)
class Suppression:
    customer_id_tokens: frozenset[str]
    email_tokens: frozenset[str]

    @property
    def empty(self) -> bool:
        return not self.customer_id_tokens and not self.email_tokens


def read_suppression_list(lake: Lake) -> dict[str, list[str]]:
    """The stored list as {"customer_id_tokens": [...], "email_tokens": [...]}, read through the
    lake's storage, so a Glue job reads it from a lake on S3 as a local run reads it from a folder."""
    data = lake.read_system(*SUPPRESSION_LIST)
    if data is None:
        return {"customer_id_tokens": [], "email_tokens": []}
    try:
        parsed = json.loads(data)
        return {"customer_id_tokens": list(parsed["customer_id_tokens"]), "email_tokens": list(parsed["email_tokens"])}
    except (ValueError, KeyError, TypeError):
        raise RfmlakeError(
            f"suppression list {lake.system_uri(*SUPPRESSION_LIST)} is corrupt; restore it from backup"
        ) from None


def load_suppression(lake: Lake) -> Suppression:
    """The lake's suppression list (empty when nobody was erased)."""
    stored = read_suppression_list(lake)
    return Suppression(frozenset(stored["customer_id_tokens"]), frozenset(stored["email_tokens"]))


def _listed(column: Column, key: bytes, kind: str, tokens: frozenset[str]) -> Column:
    from pyspark.sql import functions as F

    if not tokens:
        return F.lit(False)
    return F.coalesce(token_column(column, key, kind).isin(*sorted(tokens)), F.lit(False))


def _corrupt_mentions(df: DataFrame, key: bytes, suppression: Suppression) -> Column:
    """A corrupt record with a word that is a listed customer id or email (HMAC only on those rows)."""
    from pyspark.sql import functions as F

    if CORRUPT_COLUMN not in df.columns:
        return F.lit(False)
    words = F.split(F.col(CORRUPT_COLUMN), _WORD_SEPARATORS)
    ids, emails = sorted(suppression.customer_id_tokens), sorted(suppression.email_tokens)

    def mentions(word: Column) -> Column:
        hit = F.lit(False)
        if ids:
            hit = hit | F.coalesce(token_column(word, key, "user").isin(*ids), F.lit(False))
        if emails:
            hit = hit | (word.contains("@") & F.coalesce(token_column(word, key, "email").isin(*emails), F.lit(False)))
        return hit

    return F.col(CORRUPT_COLUMN).isNotNull() & F.coalesce(F.exists(words, mentions), F.lit(False))


def suppressed_condition(entity_name: str, df: DataFrame, key: bytes, suppression: Suppression,
                         order_ids: list[str] | None = None) -> Column:
    """True for a bronze row (raw strings, lower-case columns) of an erased customer."""
    from pyspark.sql import functions as F

    ids, emails = suppression.customer_id_tokens, suppression.email_tokens
    condition = _corrupt_mentions(df, key, suppression)
    if entity_name in ("customers", "orders", "events"):
        condition = condition | _listed(F.col("customer_id"), key, "user", ids)
    if entity_name == "customers":
        condition = condition | _listed(F.col("email"), key, "email", emails)
    if entity_name == "aws_rfm_guidance":
        condition = condition | _listed(F.col("customerid"), key, "user", ids)
    if entity_name == "access_logs":
        user = F.regexp_extract(F.col("line"), COMBINED_LOG_FORMAT, 3)
        condition = condition | _listed(F.when((user != "-") & (user != ""), user), key, "user", ids)
    if entity_name == "order_items" and order_ids:
        condition = condition | F.coalesce(F.trim(F.col("order_id")).isin(*order_ids), F.lit(False))
    return condition


def suppressed_order_ids(orders: DataFrame, key: bytes, suppression: Suppression) -> list[str]:
    """Order ids (trimmed) of the suppressed customers' landed orders; a few per customer."""
    from pyspark.sql import functions as F

    rows = (
        orders.where(suppressed_condition("orders", orders, key, suppression))
        .select(F.trim(F.col("order_id")).alias("order_id"))
        .where(F.col("order_id").isNotNull() & (F.col("order_id") != ""))
        .distinct()
        .collect()
    )
    return sorted(r["order_id"] for r in rows)


def split_suppressed(entity_name: str, df: DataFrame, key: bytes, suppression: Suppression,
                     order_ids: list[str] | None = None) -> tuple[DataFrame, DataFrame]:
    """(rows to keep, the suppressed rows' lineage only: entity, _source_file, _row_hash, _loaded_at)."""
    from pyspark.sql import functions as F

    flag = suppressed_condition(entity_name, df, key, suppression, order_ids)
    kept = df.where(~flag)
    erased = df.where(flag).select(
        F.lit(entity_name).alias("entity"), F.col("_source_file"), F.col("_row_hash"),
        F.col("_loaded_at").cast("timestamp").alias("_loaded_at"),
    )
    return kept, erased
