"""Every profile the embedded store serves (get, recommendations, search pages) is to_document of its
row in the built gold.customer_profile, after a full load and after an incremental update: the
indexer writes the documents' JSON without building them (rfmlake.profiles.build.encode_documents)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from rfmlake.lake import Lake
from rfmlake.profiles.build import to_document
from rfmlake.profiles.indexer import embedded_store, index_profiles
from rfmlake.profiles.store import ProfileQuery

CITY = 'Zürich "Nord" \\ 東京 😀\t'


def _people(lake: Lake) -> None:
    """The served lake, with people (C00001 and C00002 are duplicates of C00000), text to escape,
    missing CRM fields and UTC event times with and without microseconds."""
    dim = lake.read_arrow(lake.require("gold", "dim_customers"))
    ids = dim.column("customer_id").to_pylist()
    person = [{"C00001": "C00000", "C00002": "C00000"}.get(c, c) for c in ids]
    dim = dim.append_column("person_customer_id", pa.array(person)).append_column(
        "person_id", pa.array([f"P-{p}" for p in person]))
    city = pc.if_else(pc.equal(dim.column("customer_id"), "C00004"), CITY, dim.column("city"))
    city = pc.if_else(pc.equal(dim.column("customer_id"), "C00006"), pa.scalar(None, pa.string()), city)
    dim = dim.set_column(dim.schema.get_field_index("city"), "city", city)
    lake.write_arrow("gold", "dim_customers", dim)
    lake.write_arrow("silver", "events", pa.table({
        "event_id": ["e1", "e2", "e3"], "customer_id": ["C00003", "C00005", "C00007"],
        "event_ts": pa.array([datetime(2024, 3, 2, 10, tzinfo=UTC), datetime(2024, 3, 3, 9, 0, 0, 123456, tzinfo=UTC),
                              datetime(2024, 3, 3, 11, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
        "event_type": ["page_view", "add_to_cart", "page_view"],
    }))


def _rows(lake: Lake) -> list[dict]:
    return lake.read_arrow(lake.require("gold", "customer_profile")).sort_by("customer_id").to_pylist()


def _pages(store) -> list[dict]:
    docs, cursor = [], None
    while True:
        page = store.search(ProfileQuery(limit=7, cursor=cursor))
        docs += page.items
        if page.next_cursor is None:
            return docs
        cursor = page.next_cursor


def _assert_served(lake: Lake) -> None:
    store = embedded_store(lake)
    rows = _rows(lake)
    expected = []
    for row in rows:
        doc = to_document(row)
        recommendations = doc.pop("recommendations")
        served = store.get(row["customer_id"])
        # json.dumps: key order and int vs float compared too
        assert json.dumps(served) == json.dumps(doc), row["customer_id"]
        assert store.recommendations(row["customer_id"]) == recommendations
        expected.append(doc)
    assert json.dumps(_pages(store)) == json.dumps(expected)
    assert json.dumps(store.search(ProfileQuery(text="zürich", limit=5)).items) == json.dumps(
        [d for d in expected if d["city"] == CITY])


def test_served_documents_are_to_document_of_the_table_rows(served, tmp_path):
    lake = Lake(shutil.copytree(served["lake"].root, tmp_path / "lake"))
    _people(lake)
    assert index_profiles(lake, full=True).mode == "full"
    rows = {r["customer_id"]: to_document(r) for r in _rows(lake)}
    # the cases worth covering are in the table
    assert rows["C00000"]["customer_ids"] == ["C00000", "C00001", "C00002"] and "C00001" not in rows
    assert rows["C00000"]["recommendations"] and rows["C00000"]["value"] and rows["C00004"]["city"] == CITY
    assert rows["C00005"]["last_event_at"] == "2024-03-03T09:00:00.123456+00:00"
    assert rows["C00003"]["last_event_at"] == "2024-03-02T10:00:00+00:00"
    assert rows["C00039"]["rfm_segment"] is None and rows["C00039"]["value"] is None
    assert rows["C00039"]["recommendations"] == [] and rows["C00006"]["city"] is None
    _assert_served(lake)

    dim = lake.read_arrow(lake.require("gold", "dim_customers"))  # two cities change: an incremental update
    city = pc.if_else(pc.is_in(dim.column("customer_id"), pa.array(["C00005", "C00008"])), "Łódź",
                      dim.column("city"))
    lake.write_arrow("gold", "dim_customers", dim.set_column(dim.schema.get_field_index("city"), "city", city))
    report = index_profiles(lake)
    assert (report.mode, report.changed) == ("incremental", 2)
    _assert_served(lake)


def test_recommendation_lists_built_in_several_passes_are_the_lists_of_one(served, tmp_path, monkeypatch):
    # Passes bound DuckDB's memory (a list aggregate cannot spill): each pass a share of the customers.
    from rfmlake.profiles import build

    lake = Lake(shutil.copytree(served["lake"].root, tmp_path / "lake"))
    recommendations = lake.count_rows(lake.require("gold", "product_recommendations"))
    tables = {}
    for per_pass in (recommendations, 7):
        monkeypatch.setattr(build, "RECOMMENDATION_ROWS_PER_PASS", per_pass)
        scratch = tmp_path / f"scratch-{per_pass}"
        ref = build.write_profile_table(lake, memory_limit="256MB", temp_dir=scratch)
        tables[per_pass] = lake.read_arrow(ref)
        assert not (scratch / "recommendation-lists").exists()  # the passes' files are gone
    assert recommendations > 7 * 3
    assert tables[7].equals(tables[recommendations])
    assert any(r for r in tables[7].column("recommendations_json").to_pylist())
