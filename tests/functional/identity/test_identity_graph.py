"""Identity resolution on a crafted landing (real DuckDB ingest, then the identity stage): each rule
joins who it should, a shared device keeps two people apart, nothing past bronze holds a compared
value, and person ids stay stable run after run (a merge keeps the older id, a split is recorded)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rfmlake.identity import resolve_identity
from rfmlake.identity.job import MODEL_PATH
from rfmlake.ingest.engine import DuckEngine
from rfmlake.ingest.jobs import run_ingest
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import Settings

CUSTOMERS = """customer_id,email,phone,first_name,last_name,city,postal_code,country,created_at
c1,ann.lee@example.com,,Ann,Lee,Lund,22100,SE,2023-01-01T00:00:00Z
c2,Ann.Lee@Example.com ,,Anna,Lee,Malmo,21100,SE,2024-01-01T00:00:00Z
c3,bob.ray@example.com,+46 70 123 45 67,Bob,Ray,Uppsala,75100,SE,2023-02-01T00:00:00Z
c4,robert@example.net,+46701234567,Robert,Ray,Uppsala,75100,SE,2024-02-01T00:00:00Z
c5,maria.gonzalez@example.com,,Maria,Gonzalez,Lund,22350,SE,2023-03-01T00:00:00Z
c6,maria.gonzales@example.com,,Maria,Gonzales,Lund,22350,SE,2024-03-01T00:00:00Z
c7,maria.g@example.org,,Maria,Gonzalez,Kiruna,98130,SE,2023-04-01T00:00:00Z
c8,eve.stone@example.com,,Eve,Stone,Umea,90325,SE,2023-05-01T00:00:00Z
"""
ORDERS = "order_id,customer_id,order_ts,order_total\no1,c1,2024-05-01,10\no2,c2,2024-06-01,20\no3,c9,2024-06-02,5\n"
# d1: anonymous visits, then c8 signs in on it; d2: c1 and c3 both sign in on it (a shared device).
EVENTS = [
    {"event_id": "e1", "event_ts": "2024-05-01T10:00:00Z", "event_type": "page_view", "anonymous_id": "d1",
     "session_id": "s1"},
    {"event_id": "e2", "event_ts": "2024-05-01T10:05:00Z", "event_type": "add_to_cart", "anonymous_id": "d1",
     "session_id": "s1", "product_id": "p1"},
    {"event_id": "e3", "event_ts": "2024-05-03T09:00:00Z", "event_type": "page_view", "anonymous_id": "d1",
     "session_id": "s2"},
    {"event_id": "e4", "event_ts": "2024-05-03T09:02:00Z", "event_type": "page_view", "anonymous_id": "d1",
     "customer_id": "c8", "session_id": "s2"},
    {"event_id": "e5", "event_ts": "2024-05-04T09:00:00Z", "event_type": "page_view", "anonymous_id": "d2",
     "customer_id": "c1", "session_id": "s3"},
    {"event_id": "e6", "event_ts": "2024-05-05T09:00:00Z", "event_type": "page_view", "anonymous_id": "d2",
     "customer_id": "c3", "session_id": "s4"},
    {"event_id": "e7", "event_ts": "2024-05-06T09:00:00Z", "event_type": "page_view", "anonymous_id": "d3",
     "session_id": "s5"},
]
LOG = '10.1.2.3 - c3 [10/May/2024:13:55:36 +0000] "GET /p/P1 HTTP/1.1" 200 512 "-" "Mozilla/5.0"\n'
RAW_VALUES = ("ann.lee", "gonzal", "123 45 67", "1234567", "robert@", "stone")  # cities are not PII here


def _landing(root: Path) -> Path:
    landing = root / "landing"
    for name in ("customers", "orders", "events", "access_logs"):
        (landing / name).mkdir(parents=True)
    (landing / "customers" / "crm.csv").write_text(CUSTOMERS)
    (landing / "orders" / "orders.csv").write_text(ORDERS)
    (landing / "events" / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    (landing / "access_logs" / "web-1-2024-05-10.log").write_text(LOG)
    return landing


def _run(landing: Path, lake: Lake, run_id: str, day: int = 1) -> dict:
    engine = DuckEngine()
    try:
        ctx = RunContext(landing_dir=landing, lake=lake, settings=Settings(), run_id=run_id,
                         started_at=datetime(2024, 8, day, tzinfo=UTC))
        run_ingest(engine, ctx)
        return resolve_identity(ctx, engine).to_dict()
    finally:
        engine.close()


def _people(lake: Lake) -> dict[tuple[str, str], dict]:
    con = connect(lake, zones=("gold",))
    try:
        rows = con.execute("SELECT * FROM gold.identity_graph").fetch_arrow_table().to_pylist()
    finally:
        con.close()
    return {(r["member_kind"], r["member_id"]): r for r in rows}


def _person(people: dict, kind: str, member: str) -> str:
    return people[(kind, member)]["person_id"]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_PII_KEY", "a1" * 32)


def test_rules_join_who_they_should_and_keep_a_shared_device_apart(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    report = _run(_landing(tmp_path), lake, "run-1")
    people = _people(lake)
    person = {m: _person(people, k, m) for k, m in people}

    assert people[("customer_id", "c2")]["joined_by"] == "same_email_token"  # case and spaces do not matter
    assert person["c1"] == person["c2"]
    assert people[("customer_id", "c4")]["joined_by"] == "same_phone_token"  # the same digits, another format
    assert person["c3"] == person["c4"]
    # a typo in the name and the email, the same address: splink joins them with its probability
    assert person["c5"] == person["c6"]
    joined = people[("customer_id", "c6")]
    assert joined["joined_by"] == "probabilistic_match" and joined["match_probability"] >= 0.99
    # the same name elsewhere with another email is someone else
    assert person["c7"] not in {person["c5"], person["c1"]} and people[("customer_id", "c7")]["joined_by"] == "single"
    # a device and the customer who signed in on it
    assert person["d1"] == person["c8"] and people[("anonymous_id", "d1")]["joined_by"] == "same_event"
    # d2 saw c1 and c3, two people: it joins neither, and they stay apart
    assert people[("anonymous_id", "d2")]["joined_by"] == "shared_device"
    assert person["d2"] not in {person["c1"], person["c3"]} and person["c1"] != person["c3"]
    assert report["shared_devices"] == 1
    # the access-log user c3 (tokenized at ingest) is c3
    log_users = [r for (kind, _), r in people.items() if kind == "log_user"]
    assert [r["person_id"] for r in log_users] == [person["c3"]]
    # the guest on an order and the anonymous-only device are people of their own
    assert person["c9"] not in {person[m] for m in ("c1", "c3", "c5", "c7", "c8")}
    assert people[("anonymous_id", "d3")]["primary_customer_id"] is None
    # primary customer id: the record created first
    assert {people[("customer_id", m)]["primary_customer_id"] for m in ("c1", "c2")} == {"c1"}
    assert people[("customer_id", "c1")]["is_primary"] and not people[("customer_id", "c2")]["is_primary"]
    assert report["changes"] == {"merges": 0, "splits": 0, "new_people": len(set(person.values()))}


# Customer ids and devices that never share an event: the customer's events carry no device (a
# server-side event, an app without the cookie). d4 and c5 share session s6, so d4 is c5's person;
# d5 is in session s7 while c7 is in s8 at the same minute, so d5 stays on its own.
SESSION_EVENTS = [
    {"event_id": "e20", "event_ts": "2024-05-07T10:00:00Z", "event_type": "product_view", "anonymous_id": "d4",
     "session_id": "s6", "product_id": "p2"},
    {"event_id": "e21", "event_ts": "2024-05-07T10:03:00Z", "event_type": "page_view", "customer_id": "c5",
     "session_id": "s6"},
    {"event_id": "e22", "event_ts": "2024-05-07T10:00:00Z", "event_type": "product_view", "anonymous_id": "d5",
     "session_id": "s7", "product_id": "p2"},
    {"event_id": "e23", "event_ts": "2024-05-07T10:00:00Z", "event_type": "page_view", "customer_id": "c7",
     "session_id": "s8"},
]


def test_a_device_joins_the_customer_it_shared_a_session_with_and_no_one_else(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    (landing / "events" / "sessions.jsonl").write_text("".join(json.dumps(e) + "\n" for e in SESSION_EVENTS))
    lake = Lake(tmp_path / "lake")
    _run(landing, lake, "run-1")
    people = _people(lake)
    d4 = people[("anonymous_id", "d4")]
    assert d4["person_id"] == _person(people, "customer_id", "c5") == _person(people, "customer_id", "c6")
    assert (d4["joined_by"], d4["linked_to_kind"], d4["linked_to_id"]) == ("same_session", "customer_id", "c5")
    assert d4["primary_customer_id"] == "c5"
    # the same moment in another session is no link: d5 is a person of its own, c7 keeps its own
    d5 = people[("anonymous_id", "d5")]
    assert (d5["joined_by"], d5["primary_customer_id"], d5["linked_to_id"]) == ("single", None, None)
    assert d5["person_id"] not in {r["person_id"] for (kind, _), r in people.items() if kind == "customer_id"}
    assert [m for (kind, m), r in people.items() if r["person_id"] == _person(people, "customer_id", "c7")] == ["c7"]
    # a device seen on one event with its customer is still reported by the stronger rule
    assert people[("anonymous_id", "d1")]["joined_by"] == "same_event"


def test_nothing_past_bronze_holds_a_compared_value(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    _run(_landing(tmp_path), lake, "run-1")
    con = connect(lake, zones=("gold",))
    try:
        matches = con.execute("SELECT * FROM gold.identity_matches").fetch_arrow_table().to_pylist()
    finally:
        con.close()
    assert {(m["customer_id_l"], m["customer_id_r"], m["decision"]) for m in matches} >= {("c5", "c6", "joined")}
    assert all(m["match_weight"] is not None and m["postal_code_weight"] is not None for m in matches)
    texts = [json.dumps(json.loads(lake.read_system(*MODEL_PATH) or b"{}"))]
    for zone in ("silver", "gold"):
        for path in (lake.root / zone).rglob("*.parquet"):
            texts.append("\n".join(str(v) for row in pq.read_table(path).to_pylist() for v in row.values()))
    text = "\n".join(texts).lower()
    assert [v for v in RAW_VALUES if v in text] == []


def test_person_ids_are_stable_a_merge_keeps_the_older_id_and_a_split_is_recorded(tmp_path: Path) -> None:
    landing = _landing(tmp_path)
    lake = Lake(tmp_path / "lake")
    crm = landing / "customers" / "crm.csv"
    events = landing / "events" / "events.jsonl"
    events.rename(tmp_path / "events.jsonl")
    (landing / "events").rmdir()
    _run(landing, lake, "run-1", day=1)  # no clickstream yet: c7 is a person since day 1
    first = _people(lake)
    c7 = _person(first, "customer_id", "c7")

    (landing / "events").mkdir()
    (tmp_path / "events.jsonl").rename(events)  # the clickstream arrives: d1 and c8 are one person
    report = _run(landing, lake, "run-2", day=2)
    second = _people(lake)
    d1 = _person(second, "anonymous_id", "d1")
    assert _person(second, "customer_id", "c8") == d1
    # nobody who was there before changed person
    assert {k: v["person_id"] for k, v in second.items() if k in first} == {k: v["person_id"] for k, v in first.items()}
    assert report["changes"]["merges"] == 0 and report["changes"]["splits"] == 0
    assert _run(landing, lake, "run-2b", day=3)["changes"] == {"merges": 0, "splits": 0, "new_people": 0}
    assert {k: v["person_id"] for k, v in _people(lake).items()} == {k: v["person_id"] for k, v in second.items()}

    # c11 has c7's email and the phone c8 now has too: the two people become one; the older id stays
    (landing / "customers" / "crm-2.csv").write_text(
        "customer_id,email,phone,first_name,last_name,created_at\nc11,maria.g@example.org,+46 90 111,X,Y,2024-07-01\n")
    crm.write_text(CUSTOMERS.replace("c8,eve.stone@example.com,,", "c8,eve.stone@example.com,+4690111,"))
    report = _run(landing, lake, "run-3", day=4)
    third = _people(lake)
    merged = {_person(third, "customer_id", m) for m in ("c7", "c8", "c11")} | {_person(third, "anonymous_id", "d1")}
    assert merged == {c7}
    assert report["changes"]["merges"] == 1
    con = connect(lake, zones=("gold",))
    assert con.execute("SELECT change, person_id, other_person_id FROM gold.identity_changes").fetchall() == [
        ("merge", c7, d1)]

    # the bridging record is corrected: the people part again; the old id stays with the part holding
    # most of its members (c8 and d1), the others get new ids, and the split is recorded
    (landing / "customers" / "crm-2.csv").write_text("customer_id,email,phone\nc11,other@example.org,\n")
    report = _run(landing, lake, "run-4", day=5)
    fourth = _people(lake)
    assert _person(fourth, "customer_id", "c8") == _person(fourth, "anonymous_id", "d1") == c7
    assert len({_person(fourth, "customer_id", m) for m in ("c7", "c8", "c11")}) == 3
    assert report["changes"]["splits"] == 2
    con = connect(lake, zones=("gold",))
    rows = con.execute("SELECT change, person_id, other_person_id FROM gold.identity_changes "
                       "ORDER BY changed_at, other_person_id").fetchall()
    assert rows[0] == ("merge", c7, d1)
    assert sorted(rows[1:]) == sorted([("split", c7, _person(fourth, "customer_id", "c7")),
                                       ("split", c7, _person(fourth, "customer_id", "c11"))])
    # an id once used is never given to anyone else
    assert _person(fourth, "customer_id", "c7") not in {c7, d1}


def test_neptune_export_is_the_graph_in_bulk_load_format(tmp_path: Path) -> None:
    import csv

    from rfmlake.cli.main import main

    lake = Lake(tmp_path / "lake")
    _run(_landing(tmp_path), lake, "run-1")
    people = _people(lake)
    assert main(["identity", "export-neptune", "--lake", str(lake.root), "--out", str(tmp_path / "neptune")]) == 0
    with (tmp_path / "neptune" / "vertices.csv").open() as handle:
        vertices = list(csv.DictReader(handle))
    with (tmp_path / "neptune" / "edges.csv").open() as handle:
        edges = list(csv.DictReader(handle))
    assert list(vertices[0]) == ["~id", "~label", "member_id:String", "since:Date", "primary_customer_id:String"]
    assert list(edges[0]) == ["~id", "~from", "~to", "~label", "rule:String", "match_probability:Double"]
    ids = {v["~id"] for v in vertices}
    assert len(ids) == len(vertices)  # vertex ids are unique
    assert {v["~id"] for v in vertices if v["~label"] == "person"} == {r["person_id"] for r in people.values()}
    assert {(v["~label"], v["member_id:String"]) for v in vertices if v["~label"] != "person"} == set(people)
    assert all(e["~from"] in ids and e["~to"] in ids for e in edges)
    member_of = {e["~from"]: e["~to"] for e in edges if e["~label"] == "member_of"}
    assert member_of == {f"{k}:{m}": r["person_id"] for (k, m), r in people.items()}
    assert {(e["~from"], e["~to"], e["rule:String"]) for e in edges if e["~label"] == "linked_by"} >= {
        ("anonymous_id:d1", "customer_id:c8", "same_event")}
    text = (tmp_path / "neptune" / "vertices.csv").read_text() + (tmp_path / "neptune" / "edges.csv").read_text()
    assert [v for v in RAW_VALUES if v in text.lower()] == []


@pytest.mark.parametrize(("max_block_size", "joined"), [(3, True), (2, False)])
def test_a_postal_code_shared_by_more_than_max_block_size_records_compares_none_of_them(
        tmp_path: Path, max_block_size: int, joined: bool) -> None:
    # c5 and c6 (a typo in the name and the email) meet only through their postal code; a third
    # customer there makes its block 3 records
    landing = _landing(tmp_path)
    crowded = CUSTOMERS + "c10,zed@example.org,,Zed,Zulu,Lund,22350,SE,2023-06-01T00:00:00Z\n"
    (landing / "customers" / "crm.csv").write_text(crowded)
    lake = Lake(tmp_path / "lake")
    engine = DuckEngine()
    try:
        ctx = RunContext(landing_dir=landing, lake=lake, run_id="run-1",
                         settings=Settings(identity={"max_block_size": max_block_size}))
        run_ingest(engine, ctx)
        resolve_identity(ctx, engine)
    finally:
        engine.close()
    people = _people(lake)
    assert (_person(people, "customer_id", "c5") == _person(people, "customer_id", "c6")) is joined
    assert _person(people, "customer_id", "c10") != _person(people, "customer_id", "c5")


def _u_probabilities(lake: Lake) -> list[float]:
    model = json.loads(lake.read_system(*MODEL_PATH))
    return [level["u_probability"] for comparison in model["splink"]["comparisons"]
            for level in comparison["comparison_levels"] if "u_probability" in level]


def test_training_estimates_u_from_identity_u_sample_pairs_random_pairs(tmp_path: Path) -> None:
    # 400 records (79,800 pairs): 10,000 and 40,000 sampled pairs are different samples, so different
    # u estimates; the same setting twice gives the same model (the sampling is seeded).
    rows = [f"x{i},p{i}@example.com,,Name{i % 37},Family{i % 53},City{i % 11},{10000 + i % 97},SE,"
            "2023-01-01T00:00:00Z" for i in range(400)]
    models = {}
    for name, pairs in (("small", 10_000), ("small_again", 10_000), ("large", 40_000)):
        landing = _landing(tmp_path / name)
        (landing / "customers" / "crm.csv").write_text(CUSTOMERS + "\n".join(rows) + "\n")
        lake = Lake(tmp_path / name / "lake")
        engine = DuckEngine()
        try:
            ctx = RunContext(landing_dir=landing, lake=lake, run_id="run-1", settings=Settings(
                identity={"u_sample_pairs": pairs, "min_training_records": 10}))
            run_ingest(engine, ctx)
            assert resolve_identity(ctx, engine).model_trained
        finally:
            engine.close()
        models[name] = _u_probabilities(lake)
    assert models["small"] and models["small"] == models["small_again"]
    assert models["large"] != models["small"]
