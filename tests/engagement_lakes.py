"""A lake built by two real `rfmlake run`s (Spark, identity, dbt, segmentation, recommendations,
profiles, the journeys stage) on a small hand-checkable landing, for the tests of engagement audiences
and journeys: gold.customer_engagement comes from dbt, not from a hand-written table.

People (every CRM record has consent and an email, except c8 who has no consent):
- c1..c4 buy (Buyer);
- c5 browses in the first run's window ("Browsing, never bought") and abandons a cart in the second
  ("Abandoned a cart"): enters that segment, leaves "Browsing, never bought";
- c6 abandons a cart before the first run and stays "Abandoned a cart";
- c7 signs up and never visits in the first run, browses in the second;
- c8 abandons a cart, without consent.
The journeys folder holds `cart_rescue`: on entering "Abandoned a cart" an email naming the
customer's recommended products; and `browse_lost`: on leaving "Browsing, never bought", an event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from rfmlake.cli.main import main
from rfmlake.lake import Lake

FIRST_AS_OF, SECOND_AS_OF = "2024-06-02", "2024-06-16"
CUSTOMERS = "customer_id,email,first_name,last_name,country,created_at,marketing_opt_in\n" + "".join(
    f"c{i},person{i}@example.com,P{i},L{i},DE,2024-01-0{i}T00:00:00Z,{'false' if i == 8 else 'true'}\n"
    for i in range(1, 9))
PRODUCTS = "product_id,name,category,brand,price\n" + "".join(
    f"p{i},{name},{category},Acme,{10 * i}\n" for i, (name, category) in enumerate(
        [("Trail Shoe", "shoes"), ("Road Shoe", "shoes"), ("Rain Jacket", "outerwear"), ("Wool Hat", "accessories"),
         ("Running Sock", "accessories"), ("Fleece", "outerwear"), ("Water Bottle", "gear"), ("Headlamp", "gear")],
        start=1))
# c1..c4 buy a few products each, spread over the spring (as_of of the first run: 2024-06-02).
_BASKETS = {1: ["p1", "p3", "p5"], 2: ["p1", "p2", "p4"], 3: ["p3", "p6", "p7"], 4: ["p2", "p5", "p8"]}


def _orders() -> tuple[str, str]:
    orders = ["order_id,customer_id,order_ts"]
    items = ["order_id,product_id,quantity,unit_price"]
    for customer, basket in _BASKETS.items():
        for n, product in enumerate(basket, start=1):
            order = f"o{customer}{n}"
            orders.append(f"{order},c{customer},2024-0{n + 2}-1{customer}T12:00:00Z")
            items.append(f"{order},{product},1,{10 * int(product[1:])}")
    return "\n".join(orders) + "\n", "\n".join(items) + "\n"


def _event(n: int, ts: str, kind: str, customer: str, session: str, product: str | None = None) -> str:
    return json.dumps({"event_id": f"e{n}", "event_ts": ts, "event_type": kind, "customer_id": customer,
                       "anonymous_id": f"dev-{customer}", "session_id": session, "product_id": product,
                       "url": "https://shop.example.com/"}) + "\n"


FIRST_EVENTS = "".join([
    _event(1, "2024-05-25T10:00:00Z", "page_view", "c5", "s51"),
    _event(2, "2024-05-25T10:02:00Z", "product_view", "c5", "s51", "p3"),
    _event(3, "2024-05-20T09:00:00Z", "product_view", "c6", "s61", "p1"),
    _event(4, "2024-05-20T09:03:00Z", "add_to_cart", "c6", "s61", "p1"),
    _event(5, "2024-05-21T09:00:00Z", "product_view", "c8", "s81", "p2"),
    _event(6, "2024-05-21T09:01:00Z", "add_to_cart", "c8", "s81", "p2"),
])
SECOND_EVENTS = "".join([
    _event(7, "2024-06-10T18:00:00Z", "product_view", "c5", "s52", "p6"),
    _event(8, "2024-06-10T18:04:00Z", "add_to_cart", "c5", "s52", "p6"),
    _event(9, "2024-06-11T08:00:00Z", "page_view", "c7", "s71"),
])

CART_RESCUE = {
    "id": "cart_rescue", "name": "Cart rescue",
    "trigger": {"type": "segment_entered", "dimension": "engagement_segment", "segment": "Abandoned a cart"},
    "holdout_percent": 0,
    "audience": {"where": [{"column": "lifetime_orders", "op": "=", "value": 0}]},
    "steps": [{"id": "picks", "email": {"template": "picks"}}],
}
BROWSE_LOST = {
    "id": "browse_lost", "name": "Browsing stopped",
    "trigger": {"type": "segment_exited", "dimension": "engagement_segment", "segment": "Browsing, never bought"},
    "holdout_percent": 0,
    "steps": [{"id": "note", "event": {"detail_type": "browsing stopped"}}],
}
PICKS = {"subject": "Still thinking it over? ({{engagement_segment}})",
         "text": "Picked for you: {{recommendations}}. Our top pick: {{recommendation_1}}."}


@dataclass(frozen=True)
class EngagementLake:
    root: Path
    lake: Lake
    landing: Path
    journeys: Path
    config: Path


def _run(site: EngagementLake, as_of: str) -> None:
    assert main(["run", "--input", str(site.landing), "--lake", str(site.lake.root), "--as-of", as_of,
                 "--config", str(site.config)]) == 0


def build_engagement_lake(root: Path) -> EngagementLake:
    """The landing, the journeys folder and the first run (as of FIRST_AS_OF)."""
    landing, journeys = root / "landing", root / "journeys"
    for name in ("customers", "orders", "order_items", "products", "events"):
        (landing / name).mkdir(parents=True)
    orders, items = _orders()
    (landing / "customers" / "crm.csv").write_text(CUSTOMERS)
    (landing / "products" / "catalog.csv").write_text(PRODUCTS)
    (landing / "orders" / "orders.csv").write_text(orders)
    (landing / "order_items" / "items.csv").write_text(items)
    (landing / "events" / "may.jsonl").write_text(FIRST_EVENTS)
    (journeys / "templates").mkdir(parents=True)
    (journeys / "cart_rescue.yaml").write_text(yaml.safe_dump(CART_RESCUE))
    (journeys / "browse_lost.yaml").write_text(yaml.safe_dump(BROWSE_LOST))
    (journeys / "templates" / "picks.yaml").write_text(yaml.safe_dump(PICKS))
    config = root / "settings.yaml"
    config.write_text(yaml.safe_dump({"journeys": {"dir": str(journeys)}}))
    site = EngagementLake(root, Lake(root / "lake"), landing, journeys, config)
    _run(site, FIRST_AS_OF)
    return site


def second_run(site: EngagementLake) -> None:
    """June's events land; the second run (as of SECOND_AS_OF) reads only the new file."""
    (site.landing / "events" / "june.jsonl").write_text(SECOND_EVENTS)
    _run(site, SECOND_AS_OF)
