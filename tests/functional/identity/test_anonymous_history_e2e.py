"""End to end, two `rfmlake run`s on one landing folder: a visitor browses anonymously and abandons a
cart (a person of their own, reachable through their engagement segment), then signs up and signs in
on the same device: their anonymous history joins their profile, served over HTTP, under the person
id the device already had (a merge keeps the older id)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.profiles.auth import create_key
from rfmlake.profiles.local import keys_file, local_app
from rfmlake.settings import Settings
from serving import serving

pytestmark = pytest.mark.slow

CUSTOMERS = "customer_id,email,first_name,last_name,created_at,marketing_opt_in\n" + "".join(
    f"c{i},person{i}@example.com,P{i},L{i},2024-01-0{i}T00:00:00Z,true\n" for i in range(1, 6))
ORDERS = "order_id,customer_id,order_ts,order_total\n" + "".join(
    f"o{i}{n},c{i},2024-0{n + 2}-1{i}T12:00:00Z,{10 * i + n}\n" for i in range(1, 6) for n in range(1, 4)
) + "o99,c1,2024-06-01T12:00:00Z,15\n"  # as_of: 2024-06-02


def _event(n: int, ts: str, kind: str, session: str, customer: str | None = None) -> str:
    return json.dumps({"event_id": f"e{n}", "event_ts": ts, "event_type": kind, "anonymous_id": "V-new-visitor",
                       "session_id": session, "customer_id": customer, "product_id": "p9" if kind != "page_view" else None,
                       "url": "https://shop.example.com/"}) + "\n"


def _run(landing: Path, lake: Path) -> None:
    assert main(["run", "--input", str(landing), "--lake", str(lake)]) == 0


def _engagement(lake: Lake) -> list[dict]:
    con = connect(lake, zones=("gold",))
    try:
        return con.execute("SELECT * FROM gold.customer_engagement ORDER BY person_id").fetch_arrow_table().to_pylist()
    finally:
        con.close()


def test_anonymous_history_joins_the_profile_after_sign_up(tmp_path: Path) -> None:
    landing, lake_dir = tmp_path / "landing", tmp_path / "lake"
    for name in ("customers", "orders", "events"):
        (landing / name).mkdir(parents=True)
    (landing / "customers" / "crm.csv").write_text(CUSTOMERS)
    (landing / "orders" / "orders.csv").write_text(ORDERS)
    (landing / "events" / "anonymous.jsonl").write_text(
        _event(1, "2024-05-20T10:00:00Z", "page_view", "s1")
        + _event(2, "2024-05-20T10:03:00Z", "product_view", "s1")
        + _event(3, "2024-05-20T10:05:00Z", "add_to_cart", "s1")
        + _event(4, "2024-05-24T18:00:00Z", "product_view", "s2"))
    _run(landing, lake_dir)
    lake = Lake(lake_dir)

    visitor = [r for r in _engagement(lake) if r["is_anonymous"]]
    assert len(visitor) == 1
    visitor_person = visitor[0]["person_id"]
    assert visitor[0]["customer_id"] is None and visitor[0]["sessions"] == 2 and visitor[0]["carts_abandoned"] == 1
    assert visitor[0]["engagement_segment"] == "Abandoned a cart"

    # They sign up (a new CRM record) and sign in on the same device; the next run reads only these files.
    (landing / "customers" / "crm-signups.csv").write_text(
        "customer_id,email,first_name,last_name,created_at,marketing_opt_in\n"
        "c6,new.visitor@example.com,New,Visitor,2024-05-30T00:00:00Z,true\n")
    (landing / "events" / "signed-in.jsonl").write_text(_event(5, "2024-05-30T09:00:00Z", "page_view", "s3", "c6"))
    _run(landing, lake_dir)

    rows = {r["person_id"]: r for r in _engagement(lake)}
    assert not [r for r in rows.values() if r["is_anonymous"]]  # the visitor is anonymous no more
    person = rows[visitor_person]  # the device's person id is kept: it is the older one
    assert person["customer_id"] == "c6" and person["sessions"] == 3 and person["carts_abandoned"] == 1
    assert person["engagement_segment"] == "Abandoned a cart"  # still has not bought

    key = create_key(keys_file(lake), "test")
    with serving(local_app(lake, Settings(), rate_per_second=1000, burst=1000)) as base:
        response = httpx.get(f"{base}/profiles/c6", headers={"X-API-Key": key}, timeout=10)
    assert response.status_code == 200, response.text
    profile = response.json()
    assert profile["person_id"] == visitor_person and profile["customer_ids"] == ["c6"]
    assert profile["event_count"] == 5  # four anonymous events before sign-up, one signed in
    assert profile["sessions"] == 3 and profile["add_to_carts"] == 1 and profile["carts_abandoned"] == 1
    assert profile["last_event_at"].startswith("2024-05-30T09:00")
    assert profile["engagement_segment"] == "Abandoned a cart" and profile["rfm_segment"] is None
