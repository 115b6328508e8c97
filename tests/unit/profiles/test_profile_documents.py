"""encode_documents writes, for every profile row of an Arrow batch, the document to_document makes of
it: byte for byte json.dumps(to_document(row)) but for the packed JSON columns, which are spliced in
as they are (equal once parsed), whatever the column types, nulls and text; the lookup keys beside it
(secondary customer ids and email tokens) are those of the row's lists."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfmlake.profiles.build import LOOKUP_COLUMNS, PACKED_COLUMNS, PROFILE_COLUMNS, encode_documents, to_document
from rfmlake.profiles.store import INDEXED_FIELDS, ProfileDocument, secondary_ids_of

# The types DuckDB gives gold.customer_profile's columns (the 1M bench's schema).
BENCH_TYPES: dict[str, pa.DataType] = {
    "is_guest": pa.bool_(), "marketing_opt_in": pa.bool_(), "has_email": pa.bool_(), "has_phone": pa.bool_(),
    "created_at": pa.timestamp("us"), "last_seen_at": pa.timestamp("us"),
    "last_event_at": pa.timestamp("us", tz="Etc/UTC"),
    "first_order_date": pa.date32(), "last_order_date": pa.date32(), "as_of_date": pa.date32(),
    "monetary": pa.decimal128(18, 2), "avg_order_value": pa.decimal128(18, 2),
    "r_score": pa.int8(), "f_score": pa.int8(), "m_score": pa.int8(), "cluster_id": pa.int16(),
    **{n: pa.int32() for n in ("lifetime_orders", "orders_placed", "recency_days", "frequency", "event_count",
                               "sessions", "sessions_30d", "sessions_90d", "page_views", "product_views",
                               "add_to_carts", "carts_abandoned", "engagement_recency_days")},
}
# Types the fast paths do not take (or take differently): they must give the same documents.
OTHER_TYPES: dict[str, pa.DataType] = {
    "created_at": pa.timestamp("us", tz="Europe/Paris"), "last_seen_at": pa.timestamp("ms"),
    "last_event_at": pa.timestamp("us", tz="UTC"), "monetary": pa.float64(), "avg_order_value": pa.float32(),
    "first_order_date": pa.date64(), "r_score": pa.int64(), "city": pa.large_string(), "cluster_id": pa.uint8(),
}

_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["", '"', "\\", "é", "😀", "\x00\n"])
_instant = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))
_json = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
                     max_leaves=8)


def _value(kind: pa.DataType) -> st.SearchStrategy[Any]:
    if pa.types.is_boolean(kind):
        return st.booleans()
    if pa.types.is_integer(kind):
        info = (kind.bit_width - (0 if pa.types.is_unsigned_integer(kind) else 1))
        low = 0 if pa.types.is_unsigned_integer(kind) else -(2**info)
        return st.integers(low, 2**info - 1)
    if pa.types.is_decimal(kind):
        return st.decimals(min_value=Decimal("-1e15"), max_value=Decimal("1e15"), places=kind.scale)
    if pa.types.is_floating(kind):
        return st.floats(width=kind.bit_width)
    if pa.types.is_date(kind):
        return st.dates()
    if pa.types.is_timestamp(kind):
        whole = st.booleans().map(lambda whole: (lambda t: t.replace(microsecond=0) if whole else t))
        stamps = st.builds(lambda t, f: f(t), _instant, whole)
        if kind.unit == "ms":
            stamps = stamps.map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
        return stamps.map(lambda t: t.replace(tzinfo=UTC)) if kind.tz else stamps
    # packed columns: JSON text as DuckDB or anyone writes it, or nothing
    return _text


def _packed() -> st.SearchStrategy[str | None]:
    return st.none() | st.just("") | st.builds(lambda v, compact: json.dumps(v, ensure_ascii=compact,
                                                                              separators=(",", ":") if compact else None),
                                               _json, st.booleans())


def _email_tokens(email_token: str | None) -> st.SearchStrategy[str | None]:
    """The JSON text of a person's email tokens as DuckDB writes it (or anyone): none, the primary
    record's alone (most people), or a list holding it or not with others."""
    one = [] if email_token is None else [email_token]
    lists = st.just(one) | st.lists(st.sampled_from(["t1", "t2", *one]) | _text, max_size=4)
    return st.none() | st.builds(lambda v, compact: json.dumps(v, ensure_ascii=compact,
                                                                separators=(",", ":") if compact else None),
                                 lists, st.booleans())


@st.composite
def batches(draw: st.DrawFn, types: dict[str, pa.DataType]) -> pa.RecordBatch:
    rows = draw(st.integers(1, 6))
    absent = draw(st.sets(st.sampled_from([n for n in PROFILE_COLUMNS if n != "customer_id"]), max_size=3))
    arrays, names = [], []
    for name in PROFILE_COLUMNS:
        if name in absent:
            continue  # an older table version without the column: null in every document
        kind = types.get(name, pa.string())
        values = draw(st.lists(_packed() if name in PACKED_COLUMNS else st.none() | _value(kind),
                               min_size=rows, max_size=rows))
        if name in LOOKUP_COLUMNS:  # after email_token: the person's list may hold it
            tokens = arrays[names.index("email_token")].to_pylist() if "email_token" in names else [None] * rows
            values = [draw(_email_tokens(token)) for token in tokens]
        if name == "customer_id":
            values = [f"c{i}" for i in range(rows)]
        arrays.append(pa.array(values, kind))
        names.append(name)
    return pa.RecordBatch.from_arrays(arrays + [pa.array([1] * rows)], names + ["not_a_profile_column"])


def _check(batch: pa.RecordBatch) -> None:
    encoded = encode_documents(batch)
    assert len(encoded) == batch.num_rows
    for doc, row in zip(encoded, batch.to_pylist(), strict=True):
        assert isinstance(doc, ProfileDocument)
        expected = to_document(row)
        # json.dumps of both: key order, int vs float, NaN and nested values compared too
        assert json.dumps(json.loads(doc.json_text)) == json.dumps(expected)
        if not any(row.get(n) for n in PACKED_COLUMNS):
            assert doc.json_text == json.dumps(expected, separators=(",", ":"))
        assert json.dumps(doc[:len(INDEXED_FIELDS)]) == json.dumps([expected[n] for n in INDEXED_FIELDS])  # NaN equal too
        # the member-id lookup's rows: the person's customer ids but the primary one
        assert doc.secondary_ids == secondary_ids_of(expected["customer_id"], expected["customer_ids"])
        # the email lookup's: the person's email tokens but the primary record's; never in the document
        tokens = json.loads(row["email_tokens_json"]) if row.get("email_tokens_json") else None
        assert doc.secondary_email_tokens == secondary_ids_of(expected["email_token"], tokens)
        assert not any("email_tokens" in key for key in json.loads(doc.json_text))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(BENCH_TYPES))
def test_documents_equal_to_document_on_the_profile_table_types(batch):
    _check(batch)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches({**BENCH_TYPES, **OTHER_TYPES}))
def test_documents_equal_to_document_on_other_column_types(batch):
    _check(batch)


@pytest.mark.parametrize("stamp", [
    datetime(2024, 3, 1, 10), datetime(2024, 3, 1, 10, 0, 0, 1), datetime(1, 1, 2), datetime(999, 12, 31, 23, 59, 59),
    datetime(9999, 12, 30, 23, 59, 59, 999999), datetime(2024, 3, 1, 10, 0, 0, 500000)])
@pytest.mark.parametrize("zone", [None, "UTC", "Etc/UTC", "+00:00", "Europe/Paris", "America/St_Johns"])
def test_timestamps_are_written_as_isoformat(stamp, zone):
    value = stamp if zone is None else stamp.replace(tzinfo=UTC)
    batch = pa.RecordBatch.from_arrays([pa.array(["c1"]), pa.array([value], pa.timestamp("us", tz=zone))],
                                       ["customer_id", "created_at"])
    _check(batch)


def test_the_packed_columns_are_spliced_as_they_are():
    value = '{"p_alive":1.0,"clv":12.50,"name":"Zoë"}'  # DuckDB's to_json: decimals keep their zeros, UTF-8 as is
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["c1", "c2"]), pa.array([value, None]), pa.array(['["c1","c9"]', None]), pa.array(["[]", ""]),
         pa.array([date(2024, 1, 5), None])],
        ["customer_id", "value_json", "customer_ids_json", "recommendations_json", "as_of_date"])
    first, second = encode_documents(batch)
    assert first.json_text.endswith(f',"value":{value},"customer_ids":["c1","c9"],"recommendations":[]}}')
    assert second.json_text.endswith(',"value":null,"customer_ids":["c2"],"recommendations":[]}')
    assert (first.secondary_ids, second.secondary_ids) == (("c9",), ())
    _check(batch)


def test_a_persons_other_email_tokens_are_a_lookup_key_not_part_of_the_document():
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["c1", "c2", "c3", "c4"]), pa.array(["t1", "t2", None, "t4"]),
         pa.array(['["t1","t9"]', '["t2"]', '["t3"]', None]), pa.array(['["c1","c9"]', None, None, None])],
        ["customer_id", "email_token", "email_tokens_json", "customer_ids_json"])
    documents = encode_documents(batch)
    assert [d.secondary_email_tokens for d in documents] == [("t9",), (), ("t3",), ()]
    assert [json.loads(d.json_text)["email_token"] for d in documents] == ["t1", "t2", None, "t4"]
    assert "t9" not in documents[0].json_text and "t3" not in documents[2].json_text
    _check(batch)


@pytest.mark.parametrize("kind", [pa.null(), pa.int32()])
def test_packed_columns_of_nulls_without_a_text_type(kind):
    """A version whose packed column holds only nulls may come without a text type (Parquet's null
    type; DuckDB reads it as integer)."""
    batch = pa.RecordBatch.from_arrays([pa.array(["c1", "c2"]), pa.nulls(2, kind), pa.nulls(2, kind),
                                        pa.nulls(2, kind)],
                                       ["customer_id", "value_json", "recommendations_json", "email_tokens_json"])
    _check(batch)
