"""rfm.source: events (issue 16): a store whose only history is clickstream events gets RFM from
its purchase events, each an order worth its product's list price, scored with the same tie and
binning rules as orders: the same purchases landed as orders give the same scores and segments."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from rfmlake.cli.main import main
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

pytestmark = pytest.mark.slow

PRICES = {"p1": "19.99", "p2": "5.50", "p3": "120.00", "p4": "42.10"}
START = date(2024, 1, 1)


def purchases() -> list[tuple[str, str, date, str]]:
    """(purchase id, customer, day, product): 16 customers with 1 to 6 purchases; c14 and c15 buy
    exactly alike (a tie every score must keep)."""
    out = []
    for i in range(16):
        customer = f"c{min(i, 14) if i != 15 else 15:02d}"
        pattern = 14 if i == 15 else i
        for k in range(1 + pattern % 6):
            day = START + timedelta(days=(pattern * 11 + k * 17) % 150)
            out.append((f"e{i:02d}{k}", customer, day, f"p{1 + (pattern + k) % 4}"))
    return out


def write_products(landing: Path) -> None:
    (landing / "products").mkdir(parents=True)
    (landing / "products" / "products.csv").write_text(
        "product_id,name,price,currency\n" + "".join(f"{p},item {p},{price},EUR\n" for p, price in PRICES.items()))


def events_landing(root: Path) -> Path:
    landing = root / "events-landing"
    write_products(landing)
    rows = []
    for event_id, customer, day, product in purchases():
        ts = f"{day.isoformat()}T12:00:00Z"
        rows.append({"event_id": f"v{event_id}", "event_ts": ts, "event_type": "product_view",
                     "customer_id": customer, "product_id": product})
        rows.append({"event_id": event_id, "event_ts": ts, "event_type": "Purchase", "customer_id": customer,
                     "product_id": product, "session_id": f"s{event_id}"})
    # an anonymous purchase (no customer_id) cannot be scored; a view is no purchase
    rows.append({"event_id": "anon", "event_ts": "2024-05-01T09:00:00Z", "event_type": "purchase",
                 "anonymous_id": "a1", "product_id": "p3"})
    rows.append({"event_id": "late-view", "event_ts": "2024-07-01T09:00:00Z", "event_type": "page_view",
                 "customer_id": "c01"})
    (landing / "events").mkdir()
    (landing / "events" / "clickstream.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return landing


def orders_landing(root: Path) -> Path:
    """The same purchases as orders with one line each."""
    landing = root / "orders-landing"
    write_products(landing)
    (landing / "orders").mkdir()
    (landing / "orders" / "orders.csv").write_text("order_id,customer_id,order_ts,currency\n" + "".join(
        f"{e},{c},{d.isoformat()}T12:00:00Z,EUR\n" for e, c, d, _ in purchases()))
    (landing / "order_items").mkdir()
    (landing / "order_items" / "lines.csv").write_text("order_id,product_id,quantity,unit_price\n" + "".join(
        f"{e},{p},1,{PRICES[p]}\n" for e, _, _, p in purchases()))
    return landing


def scored(lake: Lake) -> dict[str, tuple]:
    con = connect(lake)
    try:
        return {row[0]: row[1:] for row in con.execute(
            "SELECT customer_id, as_of_date, recency_days, frequency, monetary, r_score, f_score, m_score, "
            "rfm_segment FROM gold.customer_rfm").fetchall()}
    finally:
        con.close()


def test_purchase_events_give_the_rfm_the_same_purchases_as_orders_give(tmp_path: Path) -> None:
    config = tmp_path / "events.yaml"
    config.write_text("rfm:\n  source: events\n")
    events_lake = Lake(tmp_path / "events-lake")
    assert main(["run", "--input", str(events_landing(tmp_path)), "--lake", str(events_lake.root),
                 "--config", str(config)]) == 0
    from_events = scored(events_lake)

    expected: dict[str, list] = {}
    for _, customer, day, product in purchases():
        count, total, last = expected.get(customer, [0, Decimal(0), day])
        expected[customer] = [count + 1, total + Decimal(PRICES[product]), max(last, day)]
    as_of = max(day for _, _, day, _ in purchases()) + timedelta(days=1)  # the anonymous one is not later
    assert {c: (r[0], r[1], r[2], r[3]) for c, r in from_events.items()} == {
        c: (as_of, (as_of - last).days, count, total) for c, (count, total, last) in expected.items()}
    assert len({r[4:7] for r in from_events.values()}) > 4  # scores spread over the bins
    assert from_events["c14"][4:] == from_events["c15"][4:]  # equal values, equal scores
    con = connect(events_lake)
    assert con.execute("SELECT DISTINCT order_source, reporting_currency FROM gold.fct_orders").fetchall() == [
        ("events", "EUR")]
    con.close()

    orders_lake = Lake(tmp_path / "orders-lake")
    assert main(["run", "--input", str(orders_landing(tmp_path)), "--lake", str(orders_lake.root)]) == 0
    assert scored(orders_lake) == from_events
