"""Erasure reaches the identity graph (docs/identity.md): erasing a customer removes their person
(graph rows, match evidence, changes) and their devices' anonymous history in every zone, by the
ingestion suppression rule, so no byte of the lake names them, and a later run does not bring the
device back. A shared device is no one's and stays; the person's other ids are named in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_erasure_end_to_end import _files_mentioning  # type: ignore[import-not-found]

from rfmlake.cli.main import main
from rfmlake.identity import resolve_identity
from rfmlake.identity.job import MODEL_PATH
from rfmlake.ingest.engine import DuckEngine
from rfmlake.ingest.jobs import run_ingest
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import Settings

CUSTOMERS = """customer_id,email,phone,first_name,last_name,city,postal_code,created_at
c1,ann.lee@example.com,,Ann,Lee,Lund,22100,2023-01-01T00:00:00Z
c2,ANN.LEE@example.com,,Anna,Lee,Lund,22100,2024-01-01T00:00:00Z
c3,bob.ray@example.com,,Bob,Ray,Umea,90325,2023-02-01T00:00:00Z
"""
EVENTS = [  # d1: Ann's own device (anonymous, then signed in); d2: shared by Ann and Bob
    {"event_id": "e1", "event_ts": "2024-05-01T10:00:00Z", "event_type": "page_view", "anonymous_id": "dev-ann-1",
     "session_id": "s1"},
    {"event_id": "e2", "event_ts": "2024-05-01T10:02:00Z", "event_type": "page_view", "anonymous_id": "dev-ann-1",
     "customer_id": "c1", "session_id": "s1"},
    {"event_id": "e3", "event_ts": "2024-05-02T10:00:00Z", "event_type": "page_view", "anonymous_id": "dev-shared-2",
     "customer_id": "c1", "session_id": "s2"},
    {"event_id": "e4", "event_ts": "2024-05-03T10:00:00Z", "event_type": "page_view", "anonymous_id": "dev-shared-2",
     "customer_id": "c3", "session_id": "s3"},
]


def _landing(root: Path) -> Path:
    landing = root / "landing"
    for name in ("customers", "orders", "events"):
        (landing / name).mkdir(parents=True)
    (landing / "customers" / "crm.csv").write_text(CUSTOMERS)
    (landing / "orders" / "orders.csv").write_text(
        "order_id,customer_id,order_ts,order_total\no1,c1,2024-05-01,10\no2,c2,2024-05-09,20\no3,c3,2024-05-05,5\n")
    (landing / "events" / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return landing


def _run(landing: Path, lake: Lake) -> None:
    engine = DuckEngine()
    try:
        ctx = RunContext(landing_dir=landing, lake=lake, settings=Settings())
        run_ingest(engine, ctx)
        resolve_identity(ctx, engine)
    finally:
        engine.close()


def _graph(lake: Lake) -> dict[str, str]:
    con = connect(lake, zones=("gold",))
    try:
        return dict(con.execute("SELECT member_id, person_id FROM gold.identity_graph").fetchall())
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_PII_KEY", "b2" * 32)


def test_erasing_a_customer_removes_their_person_and_devices_from_every_byte(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    landing, lake = _landing(tmp_path), Lake(tmp_path / "lake")
    _run(landing, lake)
    before = _graph(lake)
    person = before["c1"]
    assert before["c2"] == person and before["dev-ann-1"] == person  # one person: two records, a device
    assert before["dev-shared-2"] not in (person, before["c3"])  # shared: no one's
    assert _files_mentioning(lake, [person, "dev-ann-1"])  # the scan sees them before

    assert main(["erase", "--lake", str(lake.root), "--customer-id", "c1"]) == 0
    out = capsys.readouterr().out
    assert "customer ids the identity graph joined to them: c2" in out

    # No file of the lake (every table version on disk, the matching model, reports) names the
    # person, their record, their device or its events.
    assert _files_mentioning(lake, ["c1", person, "dev-ann-1", "e1", "e2", "ann.lee@example.com"]) == []
    model = json.loads(lake.read_system(*MODEL_PATH) or b"{}")
    assert model.get("splink") and "ann" not in json.dumps(model).lower()
    after = _graph(lake)
    assert "c2" not in after  # their other record's graph rows went with the person
    assert after["c3"] == before["c3"] and after["dev-shared-2"] == before["dev-shared-2"]  # everyone else stays
    con = connect(lake)
    assert con.execute("SELECT count(*) FROM silver.events WHERE anonymous_id = 'dev-shared-2'").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM silver.ingest_reconciliation "
                       "WHERE rows_in <> rows_accepted + rows_quarantined").fetchone()[0] == 0
    suppression = json.loads((lake.system_dir / "governance" / "suppression.json").read_text())
    assert len(suppression["device_tokens"]) == 1

    # The device comes back in a later delivery: ingestion drops its events (lineage only).
    (landing / "events" / "later.jsonl").write_text(json.dumps(
        {"event_id": "e9", "event_ts": "2024-06-01T10:00:00Z", "event_type": "page_view",
         "anonymous_id": "dev-ann-1", "session_id": "s9"}) + "\n")
    _run(landing, lake)
    assert _files_mentioning(lake, ["c1", person, "dev-ann-1", "e9"]) == []
    con = connect(lake)
    assert con.execute("SELECT count(*) FROM bronze.quarantine WHERE reason = 'erased_customer' "
                       "AND entity = 'events'").fetchone()[0] == 4  # e1, e2, e3 (signed in) and e9, as lineage
    # c2 is someone the next run can only see alone now
    assert _graph(lake)["c2"] != person
