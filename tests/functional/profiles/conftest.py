"""Fixtures: small gold tables -> gold.customer_profile -> the embedded store, served by uvicorn
on a free localhost port in a thread."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from rfmlake.ingest.pii import resolve_pii_key, tokenize
from rfmlake.lake import Lake
from rfmlake.profiles.auth import create_key
from rfmlake.profiles.indexer import index_profiles
from rfmlake.profiles.local import keys_file, local_app
from rfmlake.settings import Settings
from serving import serving

EMAIL = "Alice.Martin@example.org"


def _gold(lake: Lake, key: bytes, n: int = 40, ids: list[str] | None = None) -> None:
    ids = ids or [f"C{i:05d}" for i in range(n)]
    n = len(ids)
    assert n % 2 == 0, "an even number of customers (two countries, alternating)"
    lake.write_arrow("gold", "dim_customers", pa.table({
        "customer_id": ids,
        "email_token": [tokenize(EMAIL if i == 3 else f"user{i}@example.org", key, "email") for i in range(n)],
        "phone_token": [None] * n, "first_name_token": [None] * n, "last_name_token": [None] * n,
        "has_email": [True] * n, "has_phone": [False] * n,
        "country_code": ["FR", "DE"] * (n // 2), "city": ["Lyon", "Berlin"] * (n // 2),
        "postal_code": ["69001"] * n, "created_at": [datetime(2024, 1, 1)] * n,
        "updated_at": [datetime(2024, 1, 1)] * n, "marketing_opt_in": [i % 2 == 0 for i in range(n)],
        "first_order_date": [date(2024, 1, 5)] * n, "last_order_date": [date(2024, 3, 1)] * n,
        "lifetime_orders": pa.array([2] * n, pa.int32()), "orders_placed": pa.array([3] * n, pa.int32()),
        "is_guest": [False] * n,
    }))
    scored = ids[:-2]  # the last two customers have no counted order: no RFM row
    lake.write_arrow("gold", "customer_rfm", pa.table({
        "customer_id": scored, "as_of_date": [date(2024, 4, 1)] * len(scored),
        "recency_days": pa.array([31] * len(scored), pa.int32()), "frequency": pa.array([2] * len(scored), pa.int32()),
        "monetary": pa.array([Decimal("120.50")] * len(scored), pa.decimal128(18, 2)),
        "avg_order_value": pa.array([Decimal("60.25")] * len(scored), pa.decimal128(18, 2)),
        "r_score": pa.array([i % 5 + 1 for i in range(len(scored))], pa.int8()),
        "f_score": pa.array([3] * len(scored), pa.int8()), "m_score": pa.array([4] * len(scored), pa.int8()),
        "rfm_cell": ["534"] * len(scored),
        "rfm_segment": ["Champions" if i % 3 == 0 else "At Risk" for i in range(len(scored))],
        "cluster_id": pa.array([i % 2 for i in range(len(scored))], pa.int16()),
        "cluster_label": ["high value" if i % 2 else "occasional" for i in range(len(scored))],
        "model_version": ["m1"] * len(scored),
    }))
    lake.write_arrow("gold", "customer_value", pa.table({"customer_id": ids[:5], "predicted_clv": [100.0] * 5}))
    # twelve recommendations each for the first ten customers, written best last to prove the ordering
    recs = [(c, rank) for c in ids[:10] for rank in range(12, 0, -1)]
    lake.write_arrow("gold", "product_recommendations", pa.table({
        "customer_id": [c for c, _ in recs], "rank": pa.array([r for _, r in recs], pa.int16()),
        "product_id": [f"P{r:03d}" for _, r in recs], "product_name": [f"Lamp {r}" for _, r in recs],
        "category": ["Home"] * len(recs), "brand": [None] * len(recs),
        "score": [1.0 / r for _, r in recs], "source": ["similar_items"] * len(recs),
        "as_of_date": [date(2024, 4, 1)] * len(recs), "model_version": ["rec-1"] * len(recs),
    }))
    lake.write_arrow("silver", "events", pa.table({
        "event_id": ["e1", "e2", "e3"], "customer_id": ["C00003", "C00003", None],
        "event_ts": [datetime(2024, 3, 2, 10), datetime(2024, 3, 3, 9), datetime(2024, 3, 3, 11)],
        "event_type": ["page_view", "add_to_cart", "page_view"],
    }))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    lake = Lake(tmp_path_factory.mktemp("profiles") / "lake")
    settings = Settings()
    key = resolve_pii_key(lake, settings)
    _gold(lake, key)
    report = index_profiles(lake)
    keys = {"full": create_key(keys_file(lake), "full"),
            "no_email": create_key(keys_file(lake), "no-email", ("profiles",))}
    with serving(local_app(lake, settings, rate_per_second=1000, burst=1000)) as base:
        yield {"lake": lake, "base": base, "keys": keys, "report": report, "settings": settings, "email": EMAIL}


@pytest.fixture(scope="session")
def serve_app():
    return serving


@pytest.fixture(scope="session")
def write_gold():
    """Writes the small gold tables profiles are built from: write_gold(lake, pii_key, ids=[...])."""
    return _gold
