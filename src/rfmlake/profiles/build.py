"""gold.customer_profile: one document per person, built after segmentation (docs/adr/0003).

One SQL query over the gold (and silver.events) tables, run by DuckDB over the lake's catalog. The
optional inputs (gold.customer_value, gold.customer_engagement, gold.identity_graph, silver.events)
are joined only when the lake holds them, so the profile never waits for a feature another stage has
not produced yet.

A person (docs/identity.md) is keyed by their primary customer id: the profile's `customer_id`,
with every customer id of the person in `customer_ids`; order history adds up over them, and the
clickstream counts the anonymous visits of the person's devices too.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from rfmlake.errors import PipelineError
from rfmlake.identity.people import person_events_query
from rfmlake.lake import Lake, TableRef
from rfmlake.lake.catalog import connect
from rfmlake.lake.storage import Storage
from rfmlake.lake.values import jsonable, jsonable_column
from rfmlake.profiles.store import INDEXED_FIELDS, ProfileDocument, secondary_ids_of

PROFILE_TABLE = "customer_profile"
REQUIRED = ("dim_customers", "customer_rfm")

# Columns of gold.customer_profile; every one is documented in docs/profiles-api.md.
PROFILE_COLUMNS: tuple[str, ...] = (
    "customer_id", "email_token", "is_guest", "country_code", "city", "postal_code", "created_at",
    "marketing_opt_in", "has_email", "has_phone",
    "first_order_date", "last_order_date", "lifetime_orders", "orders_placed",
    "as_of_date", "recency_days", "frequency", "monetary", "avg_order_value",
    "r_score", "f_score", "m_score", "rfm_cell", "rfm_segment", "cluster_id", "cluster_label", "model_version",
    "value_json", "last_event_at", "last_event_type", "event_count",
    "person_id", "customer_ids_json", "email_tokens_json", "engagement_segment", "sessions", "sessions_30d",
    "sessions_90d", "page_views", "product_views", "add_to_carts", "carts_abandoned", "last_seen_at",
    "engagement_recency_days",
    "recommendations_json",
)
# gold.customer_engagement's columns in the profile (null when the table is absent).
ENGAGEMENT_COLUMNS: tuple[str, ...] = (
    "engagement_segment", "sessions", "sessions_30d", "sessions_90d", "page_views", "product_views",
    "add_to_carts", "carts_abandoned", "last_seen_at", "engagement_recency_days",
)
_ENGAGEMENT_TYPES = {"engagement_segment": "varchar", "last_seen_at": "timestamp"}
# The fields of one recommendation in a profile's list (gold.product_recommendations, best first).
RECOMMENDATION_FIELDS: tuple[str, ...] = ("rank", "product_id", "product_name", "category", "brand", "score", "source")


def _value_select(lake: Lake) -> tuple[str, str]:
    """(select expression, join) for gold.customer_value when present: its columns as one JSON object."""
    ref = lake.current("gold", "customer_value")
    if ref is None:
        return "cast(null as varchar) as value_json", ""
    names = [n for n in lake.table_schema(ref).names if n != "customer_id"]
    if not names:
        return "cast(null as varchar) as value_json", ""
    pack = ", ".join(f'"{n}" := v."{n}"' for n in names)
    return (f"case when v.customer_id is not null then cast(to_json(struct_pack({pack})) as varchar) end as value_json",
            "left join gold.customer_value as v on v.customer_id = c.customer_id")


def _has_people(lake: Lake) -> bool:
    """Whether gold.dim_customers carries the person of each customer id (built with the identity graph)."""
    ref = lake.current("gold", "dim_customers")
    return ref is not None and "person_customer_id" in lake.table_schema(ref).names


def _events_select(lake: Lake) -> tuple[str, str]:
    if lake.current("silver", "events") is None:
        return ("cast(null as timestamp) as last_event_at, cast(null as varchar) as last_event_type, "
                "0 as event_count"), ""
    if _has_people(lake) and lake.current("gold", "identity_graph") is not None:
        # The person's events: signed in under any of their customer ids, or anonymous on a device
        # the identity graph joined to them.
        join = f"""left join (
            select person_customer_id as customer_id,
                   max(event_ts) as last_event_at,
                   arg_max(event_type, event_ts) as last_event_type,
                   count(*) as event_count
            from ({person_events_query()}) as ev
            group by 1
        ) as e on e.customer_id = c.customer_id"""
        return ("e.last_event_at, e.last_event_type, cast(coalesce(e.event_count, 0) as integer) as event_count",
                join)
    join = """left join (
        select customer_id,
               max(event_ts) as last_event_at,
               arg_max(event_type, event_ts) as last_event_type,
               count(*) as event_count
        from silver.events where customer_id is not null group by customer_id
    ) as e on e.customer_id = c.customer_id"""
    return ("e.last_event_at, e.last_event_type, cast(coalesce(e.event_count, 0) as integer) as event_count",
            join)


def _engagement_select(lake: Lake) -> tuple[str, str]:
    if lake.current("gold", "customer_engagement") is None:
        return ", ".join(f"cast(null as {_ENGAGEMENT_TYPES.get(n, 'integer')}) as {n}" for n in ENGAGEMENT_COLUMNS), ""
    return (", ".join(f"g.{n}" for n in ENGAGEMENT_COLUMNS),
            "left join gold.customer_engagement as g on g.customer_id = c.customer_id")


def _customers_from(lake: Lake) -> tuple[str, str]:
    """(from clause, person columns): one row per person, the primary customer id's CRM attributes and
    the order history of all their customer ids, with every email token of theirs (null when none);
    one row per customer id on a lake without people."""
    if not _has_people(lake):
        return ("gold.dim_customers as c",
                "'customer:' || c.customer_id as person_id, to_json([c.customer_id])::varchar as customer_ids_json, "
                "case when c.email_token is not null then to_json([c.email_token])::varchar end as email_tokens_json")
    # The lists are aggregated only for people with more than one customer id (2% of the 10M bench's
    # 2.2M): DuckDB cannot spill a list aggregate, and over everyone the email tokens' alone passed
    # the 3 GB limit. A person with one customer id gets that id and its token from the min()s.
    return ("""(select d.* replace (p.first_order_date as first_order_date, p.last_order_date as last_order_date,
                                   p.lifetime_orders as lifetime_orders, p.orders_placed as orders_placed),
                      case when p.members = 1 then [p.one_customer_id] else m.customer_ids end as customer_ids,
                      case when p.members > 1 then m.email_tokens
                           when p.one_email_token is not null then [p.one_email_token] end as email_tokens
               from gold.dim_customers as d
               join (select person_customer_id, min(first_order_date) as first_order_date,
                            max(last_order_date) as last_order_date,
                            cast(sum(lifetime_orders) as integer) as lifetime_orders,
                            cast(sum(orders_placed) as integer) as orders_placed,
                            count(*) as members, min(customer_id) as one_customer_id,
                            min(email_token) as one_email_token
                     from gold.dim_customers group by person_customer_id) as p
                 on p.person_customer_id = d.customer_id
               left join (select person_customer_id,
                                 list(customer_id order by customer_id) as customer_ids,
                                 list(distinct email_token order by email_token)
                                     filter (where email_token is not null) as email_tokens
                          from gold.dim_customers
                          where person_customer_id in (select person_customer_id from gold.dim_customers
                                                       group by 1 having count(*) > 1)
                          group by person_customer_id) as m
                 on m.person_customer_id = d.customer_id) as c""",
            "c.person_id, to_json(c.customer_ids)::varchar as customer_ids_json, "
            "to_json(c.email_tokens)::varchar as email_tokens_json")
# Recommendation rows aggregated into lists per pass (by a hash of the customer id): DuckDB cannot
# spill a list aggregate, and one pass over the 22M rows of the 10M bench needed more than 3 GB.
RECOMMENDATION_ROWS_PER_PASS = 2_000_000


def _recommendations_select(lake: Lake, lists: str | None = None) -> tuple[str, str]:
    """(select expression, join) for gold.product_recommendations when present: the customer's
    list, best first, as one JSON array; from `lists` (a relation of customer_id,
    recommendations_json: write_recommendation_lists) when given."""
    if lake.current("gold", "product_recommendations") is None:
        return "cast(null as varchar) as recommendations_json", ""
    source = lists if lists is not None else f"({_recommendation_lists_query()})"
    return "rec.recommendations_json", f"left join {source} as rec on rec.customer_id = c.customer_id"


def _recommendation_lists_query(where: str = "") -> str:
    # Each row's JSON object joined as text: the same array as to_json(list(struct_pack(..))), made
    # 2.8x faster (6.4 s -> 2.3 s for the 2.2M rows of the 1M bench).
    pack = ", ".join(f"{f} := {f}" for f in RECOMMENDATION_FIELDS)
    return f"""
        select customer_id,
               '[' || string_agg(cast(to_json(struct_pack({pack})) as varchar), ',' order by rank) || ']'
                   as recommendations_json
        from gold.product_recommendations {where} group by customer_id"""


def write_recommendation_lists(con: duckdb.DuckDBPyConnection, lake: Lake, folder: Path) -> str | None:
    """Each customer's recommendations as one JSON array, written as Parquet files into `folder` in
    passes of about RECOMMENDATION_ROWS_PER_PASS rows (a pass's lists fit in DuckDB's memory, the
    files on disk). Returns the scan of them, None without gold.product_recommendations."""
    ref = lake.current("gold", "product_recommendations")
    if ref is None:
        return None
    passes = max(1, math.ceil(lake.count_rows(ref) / RECOMMENDATION_ROWS_PER_PASS))
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(passes):
        target = str(folder / f"lists-{part:05d}.parquet").replace("'", "''")
        where = f"where hash(customer_id) % {passes} = {part}" if passes > 1 else ""
        con.execute(f"COPY ({_recommendation_lists_query(where)}) TO '{target}' (FORMAT parquet)")
    glob = str(folder / "lists-*.parquet").replace("'", "''")
    return f"read_parquet('{glob}')"


def profile_query(lake: Lake, recommendation_lists: str | None = None) -> str:
    missing = [name for name in REQUIRED if lake.current("gold", name) is None]
    if missing:
        raise PipelineError(
            f"the customer profile needs {', '.join('gold.' + n for n in missing)}, absent from the lake at "
            f"{lake}; run the dbt and segmentation stages first"
        )
    value_sql, value_join = _value_select(lake)
    events_sql, events_join = _events_select(lake)
    engagement_sql, engagement_join = _engagement_select(lake)
    customers, person_sql = _customers_from(lake)
    recs_sql, recs_join = _recommendations_select(lake, recommendation_lists)
    return f"""
    select
        c.customer_id, c.email_token, c.is_guest, c.country_code, c.city, c.postal_code, c.created_at,
        c.marketing_opt_in, c.has_email, c.has_phone,
        c.first_order_date, c.last_order_date, c.lifetime_orders, c.orders_placed,
        r.as_of_date, r.recency_days, r.frequency, r.monetary, r.avg_order_value,
        r.r_score, r.f_score, r.m_score, r.rfm_cell, r.rfm_segment, r.cluster_id, r.cluster_label,
        r.model_version,
        {value_sql},
        {events_sql},
        {person_sql},
        {engagement_sql},
        {recs_sql}
    from {customers}
    left join gold.customer_rfm as r on r.customer_id = c.customer_id
    {value_join}
    {events_join}
    {engagement_join}
    {recs_join}
    order by c.customer_id
    """


def write_profile_table(lake: Lake, *, memory_limit: str | None = None, temp_dir: str | Path | None = None) -> TableRef:
    """Build gold.customer_profile from the current gold tables and commit it as a new version.
    DuckDB writes the Parquet file itself (streaming, spilling to `temp_dir` past `memory_limit`):
    the table never passes through Python."""
    version = lake.new_version("gold", PROFILE_TABLE)
    lake.storage.make_dir(version)
    target = Storage.join(version, "part-00000.parquet").replace("'", "''")
    scratch = Path(temp_dir) if temp_dir is not None else Path(tempfile.mkdtemp(prefix="rfmlake-profiles-"))
    con = connect(lake, zones=("silver", "gold"), memory_limit=memory_limit, temp_dir=scratch)
    try:
        lists = write_recommendation_lists(con, lake, scratch / "recommendation-lists")
        con.execute(f"COPY ({profile_query(lake, lists)}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
    finally:
        con.close()
        shutil.rmtree(scratch / "recommendation-lists", ignore_errors=True)
        if temp_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return lake.commit("gold", PROFILE_TABLE, version)


# Columns holding JSON text (DuckDB's to_json), served as the nested values they encode.
PACKED_COLUMNS: tuple[str, ...] = ("value_json", "customer_ids_json", "recommendations_json")
# Columns the stores index but the document does not hold: every email token of the person (JSON
# text), the key `find_by_email_token` matches (ProfileDocument.secondary_email_tokens).
LOOKUP_COLUMNS: tuple[str, ...] = ("email_tokens_json",)
_PLAIN_COLUMNS = tuple(name for name in PROFILE_COLUMNS if name not in PACKED_COLUMNS + LOOKUP_COLUMNS)


def to_document(row: dict[str, Any]) -> dict[str, Any]:
    """A profile row as the JSON document the stores hold and the API returns. The reference for
    `encode_documents`, which writes the same documents as JSON text without building them. The
    lookup columns (the person's email tokens) are not part of it."""
    doc = {name: jsonable(row.get(name)) for name in _PLAIN_COLUMNS}
    raw_value = row.get("value_json")
    doc["value"] = json.loads(raw_value) if raw_value else None
    raw_ids = row.get("customer_ids_json")
    doc["customer_ids"] = json.loads(raw_ids) if raw_ids else [row.get("customer_id")]
    raw_recommendations = row.get("recommendations_json")
    doc["recommendations"] = json.loads(raw_recommendations) if raw_recommendations else []
    return doc




# The keys of to_document's documents in its order, each as json.dumps writes it with its separator.
_DOCUMENT_KEYS = tuple(("{" if i == 0 else ",") + json.dumps(name) + ":" for i, name in
                       enumerate((*_PLAIN_COLUMNS, "value", "customer_ids", "recommendations")))
# What json.dumps writes for one value inside a document (the same encoder settings).
_encode_value = json.JSONEncoder(separators=(",", ":")).encode
_NULL = "null"
# Text json.dumps writes as it is between quotes: printable ASCII but for the quote and the backslash.
_NEEDS_ESCAPE = r'[^\x20\x21\x23-\x5b\x5d-\x7e]'


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _quoted(text: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise('"', text, '"', "")


def _utf8(text: pa.Array) -> pa.Array:
    """Text as Arrow's `string`, the one type the joins take together (a batch's text is far below its 2 GB)."""
    return text.cast(pa.string()) if pa.types.is_large_string(text.type) else text


# Arrow's text of a microsecond timestamp ("2024-03-01 10:00:00.000000", "+0000" after it when UTC)
# rewritten as datetime.isoformat writes it: a T, no fraction when it is zero, "+00:00".
_TIMESTAMP_TEXT = r"^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(?:\.000000|(\.\d{6}))"
_UTC_ZONES = frozenset({"UTC", "Etc/UTC", "+00:00"})


def _timestamps_json(column: pa.Array) -> pa.Array | None:
    """A naive or UTC microsecond timestamp column as json.dumps writes its isoformat strings,
    made by Arrow; None for other timestamps (or text not as expected): those go through Python."""
    kind = column.type
    if kind.unit != "us" or (kind.tz is not None and kind.tz not in _UTC_ZONES):
        return None
    pattern = _TIMESTAMP_TEXT + ("" if kind.tz is None else r"\+0000") + "$"
    text = pc.cast(column, pa.string())
    if not pc.all(pc.match_substring_regex(text, pattern)).as_py():
        return None
    offset = "" if kind.tz is None else "+00:00"
    return pc.replace_substring_regex(text, pattern, rf'"\1T\2\3{offset}"')


def _column_json(column: pa.Array) -> pa.Array:
    """Each value of a column as json.dumps writes it in a document (null stays null). Arrow writes
    it where its text is JSON's; Python (jsonable_column, then the encoder) otherwise."""
    kind = column.type
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        return pc.cast(column, pa.string())
    if pa.types.is_date(kind):  # Arrow's text of a date is its isoformat (YYYY-MM-DD)
        return _quoted(pc.cast(column, pa.string()))
    if pa.types.is_timestamp(kind) and (made := _timestamps_json(column)) is not None:
        return made
    if _is_text(kind) and not pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
        return _quoted(_utf8(column))  # nothing to escape
    values = jsonable_column(column)
    if _is_text(kind):
        texts = [None if v is None else encode_basestring_ascii(v) for v in values]
    elif pa.types.is_decimal(kind):  # always finite: json.dumps writes float.__repr__
        texts = [None if v is None else repr(v) for v in values]
    elif pa.types.is_timestamp(kind):
        texts = [None if v is None else f'"{v}"' for v in values]  # isoformat: ASCII, nothing to escape
    else:
        texts = [None if v is None else _encode_value(v) for v in values]
    return pa.array(texts, pa.string())


def encode_documents(batch: pa.RecordBatch) -> list[ProfileDocument]:
    """The profile rows of an Arrow batch as store documents: the JSON text of each is
    json.dumps(to_document(row), separators=(",", ":")), assembled by Arrow from each column's
    values written as JSON, with the packed columns' JSON text spliced in as it is (not decoded and
    encoded again; equal to it once parsed). Columns the batch lacks are null, as in to_document."""
    rows = batch.num_rows
    names = set(batch.schema.names)
    nothing = pa.nulls(rows, pa.string())

    def column(name: str) -> pa.Array:
        return batch.column(name) if name in names else nothing

    texts = [pc.fill_null(_column_json(column(name)), _NULL) for name in _PLAIN_COLUMNS]

    def packed(name: str, default: pa.Array | str) -> pa.Array:
        raw = column(name)
        if not _is_text(raw.type):  # e.g. only nulls, written without a type: to_document's way, value by value
            raw = pa.array([_encode_value(json.loads(v)) if v else None for v in raw.to_pylist()], pa.string())
        raw = _utf8(raw)
        return pc.if_else(pc.fill_null(pc.not_equal(raw, ""), False), raw, default)  # to_document: `if raw`

    customer_ids = pc.binary_join_element_wise("[", texts[_PLAIN_COLUMNS.index("customer_id")], "]", "")
    ids_text = packed("customer_ids_json", customer_ids)
    texts += [packed("value_json", _NULL), ids_text, packed("recommendations_json", "[]")]
    parts = [part for key, text in zip(_DOCUMENT_KEYS, texts, strict=True) for part in (key, text)]
    documents = pc.binary_join_element_wise(*parts, "}", "").to_pylist()
    values = [[None] * rows if name not in names else jsonable_column(batch.column(name)) for name in INDEXED_FIELDS]
    secondary = _secondary(values[0], ids_text, customer_ids)
    email_tokens = column("email_tokens_json")
    if not _is_text(email_tokens.type):  # only nulls, written without a type
        email_tokens = pc.cast(email_tokens, pa.string())
    only_email = pc.binary_join_element_wise("[", texts[_PLAIN_COLUMNS.index("email_token")], "]", "")
    secondary_emails = _secondary(values[INDEXED_FIELDS.index("email_token")], _utf8(email_tokens), only_email)
    return list(map(ProfileDocument._make, zip(*values, secondary, secondary_emails, documents, strict=True)))


def _secondary(primaries: list[Any], lists: pa.Array, only_primary: pa.Array) -> list[tuple[str, ...]]:
    """Each profile's secondary members of a list (store.secondary_ids_of of its primary and the
    list's JSON text): its customer ids but the primary one, its email tokens but the primary
    record's. Most people have one customer id and one email: their list's text is the primary's
    alone (or null, or empty), found by Arrow; only the other lists are parsed."""
    parse = pc.and_(pc.not_equal(lists, only_primary), pc.not_equal(lists, "[]"))
    others = pc.indices_nonzero(pc.fill_null(parse, False))
    secondary: list[tuple[str, ...]] = [()] * len(primaries)
    for i, text in zip(others.to_pylist(), lists.take(others).to_pylist(), strict=True):
        secondary[i] = secondary_ids_of(primaries[i], json.loads(text))
    return secondary
