"""Recommendations per person, on a lake where the identity stage really ran (a generated landing with
its planted duplicates and devices, plus two crafted people): one list per person keyed by the primary
customer id, what any of their ids bought is left out, their anonymous views on a device identity
joined to them count, and a secondary id finds the person's list (journeys' function, the profile)."""

from __future__ import annotations

import json

import pytest

from rfmlake.generate import generate_landing
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.recommend import recommendations_for
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

STAGES = ("ingest_bronze", "conform_silver", "identity", "dbt_build", "segmentation", "recommendations", "profiles")
# zz1 and zz2 are one person (the same email; zz1 is older: the primary id); the person bought
# P000001 under zz2. zy1 and zy2 are one person who never bought and viewed P000003 signed in as zy2
# only. zx1 never bought and browsed P000002 anonymously on device DZX before signing in on it.
CUSTOMERS = """customer_id,email,first_name,last_name,created_at
zz1,zed.zulu@example.org,Zed,Zulu,2024-01-01T00:00:00Z
zz2,zed.zulu@example.org,Zed,Zulu,2025-01-01T00:00:00Z
zy1,yan.york@example.org,Yan,York,2024-02-01T00:00:00Z
zy2,YAN.YORK@example.org,Yan,York,2025-02-01T00:00:00Z
zx1,xia.xu@example.org,Xia,Xu,2024-03-01T00:00:00Z
"""
ORDERS = "order_id,customer_id,order_ts,status,currency,order_total\nOZZ1,zz2,2026-06-01T10:00:00Z,completed,EUR,12\n"
ITEMS = "order_id,product_id,quantity,unit_price\nOZZ1,P000001,1,12\n"
EVENTS = [
    {"event_id": "EZ1", "event_ts": "2026-06-02T10:00:00Z", "event_type": "product_view", "anonymous_id": "DZX",
     "session_id": "SZ1", "product_id": "P000002"},
    {"event_id": "EZ2", "event_ts": "2026-06-02T10:04:00Z", "event_type": "product_view", "anonymous_id": "DZX",
     "session_id": "SZ1", "product_id": "P000002"},
    {"event_id": "EZ3", "event_ts": "2026-06-09T10:00:00Z", "event_type": "page_view", "anonymous_id": "DZX",
     "customer_id": "zx1", "session_id": "SZ2"},
    {"event_id": "EZ4", "event_ts": "2026-06-09T11:02:00Z", "event_type": "product_view", "customer_id": "zy2",
     "session_id": "SZ3", "product_id": "P000003"},
]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("per-person")
    landing = root / "landing"
    generate_landing(landing, order_lines=4000, seed=5)
    (landing / "customers" / "crafted.csv").write_text(CUSTOMERS)
    (landing / "orders" / "crafted.csv").write_text(ORDERS)
    (landing / "order_items" / "crafted.csv").write_text(ITEMS)
    (landing / "events" / "crafted.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    lake = Lake(root / "lake")
    run_pipeline(RunContext(landing_dir=landing, lake=lake, settings=load_settings()),
                 stages=tuple(s for s in PIPELINE if s.name in STAGES))
    return lake


def _rows(lake: Lake, sql: str) -> list[tuple]:
    con = connect(lake, zones=("silver", "gold"))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _lists(lake: Lake) -> dict[str, list[tuple[str, str]]]:
    lists: dict[str, list[tuple[str, str]]] = {}
    for customer, product, source in _rows(lake, "select customer_id, product_id, source "
                                                 "from gold.product_recommendations order by customer_id, rank"):
        lists.setdefault(customer, []).append((product, source))
    return lists


def test_one_list_per_person_keyed_by_the_primary_customer_id(lake: Lake) -> None:
    graph = {m: (p, primary) for m, p, primary in _rows(
        lake, "select member_id, person_id, primary_customer_id from gold.identity_graph "
              "where member_kind = 'customer_id'")}
    assert graph["zz2"][0] == graph["zz1"][0] and graph["zz2"][1] == "zz1"
    assert graph["zy2"][0] == graph["zy1"][0] and graph["zy2"][1] == "zy1"
    lists = _lists(lake)
    people = {primary for primary, in _rows(lake, "select person_customer_id from gold.dim_customers "
                                                  "union select customer_id from gold.customer_rfm")}
    assert set(lists) == people
    # the generator's planted duplicates too: no secondary id has a list of its own
    secondary = {m for m, (_, primary) in graph.items() if m != primary}
    assert len(secondary) >= 5 and not secondary & set(lists)
    assert all(len(items) == 10 for items in lists.values())


def test_what_any_of_a_persons_ids_bought_is_left_out(lake: Lake) -> None:
    assert _rows(lake, "select customer_id from gold.fct_orders where order_customer_id = 'zz2'") == [("zz1",)]
    assert "P000001" not in [product for product, _ in _lists(lake)["zz1"]]
    bought_elsewhere = _rows(lake, """
        select count(*) from gold.product_recommendations as r
        join gold.fct_orders as o on o.customer_id = r.customer_id and o.status = 'completed'
        join silver.order_items as i on i.order_id = o.order_id and i.product_id = r.product_id""")
    assert bought_elsewhere == [(0,)]


def test_anonymous_views_on_the_persons_device_count_for_the_person(lake: Lake) -> None:
    # zx never bought and never viewed a product signed in: without the anonymous views of the device
    # identity joined to them, they would get the cold-start list
    (device,) = _rows(lake, "select primary_customer_id, joined_by from gold.identity_graph "
                            "where member_kind = 'anonymous_id' and member_id = 'DZX'")
    assert device == ("zx1", "same_event")
    assert {source for _, source in _lists(lake)["zx1"]} == {"similar_items"}


def test_views_under_a_secondary_id_count_for_the_person(lake: Lake) -> None:
    # zy's only interaction is a view signed in as zy2: it is the person's, under zy1
    assert {source for _, source in _lists(lake)["zy1"]} == {"similar_items"}


def test_a_secondary_id_finds_the_persons_list(lake: Lake) -> None:
    got = recommendations_for(lake, ["zz2", "zy2", "zz1", "zy1", "nobody-such"], n=10)
    assert list(got) == ["zz2", "zy2", "zz1", "zy1", "nobody-such"]
    assert got["zz2"] == got["zz1"] and got["zy2"] == got["zy1"] and got["nobody-such"] == []
    assert [item["product_id"] for item in got["zy1"]] == [product for product, _ in _lists(lake)["zy1"]]
    # the profile is the person's, under the primary id, with the person's list
    [(profile,)] = _rows(lake, "select recommendations_json from gold.customer_profile where customer_id = 'zy1'")
    assert [item["product_id"] for item in json.loads(profile)] == [item["product_id"] for item in got["zy1"]]
    assert _rows(lake, "select count(*) from gold.customer_profile where customer_id in ('zy2', 'zz2')") == [(0,)]
