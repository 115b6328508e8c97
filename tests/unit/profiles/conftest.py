"""Fixtures of the profile store contract suite: the in-memory OpenSearch (tests/fake_opensearch.py)
and the embedded store."""

from __future__ import annotations

from typing import Any

import pytest

from fake_opensearch import FakeOpenSearch, make_client  # type: ignore[import-not-found]


@pytest.fixture()
def fake_opensearch() -> FakeOpenSearch:
    return FakeOpenSearch()


def sample_documents(n: int = 30) -> list[dict[str, Any]]:
    """Deterministic profile documents shaped like rfmlake.profiles.build.to_document output."""
    segments = ["Champions", "Loyal", "At Risk", "Hibernating"]
    cities = ["Lyon", "Paris", "Berlin", "New York", "Lisbon"]
    docs = []
    for i in range(n):
        docs.append({
            "customer_id": f"c{i:04d}", "email_token": f"tok{i:04d}", "is_guest": i % 10 == 9,
            "country_code": ["FR", "FR", "DE", "US", "PT"][i % 5], "city": cities[i % 5], "postal_code": "1000",
            "created_at": "2024-01-01T00:00:00", "marketing_opt_in": i % 2 == 0, "has_email": True,
            "has_phone": False, "first_order_date": "2024-01-02", "last_order_date": "2024-03-01",
            "lifetime_orders": i % 7 + 1, "orders_placed": i % 7 + 2, "as_of_date": "2024-04-01",
            "recency_days": i + 1, "frequency": i % 7 + 1, "monetary": float(i * 10), "avg_order_value": 10.0,
            "r_score": i % 5 + 1, "f_score": (i // 5) % 5 + 1, "m_score": (i * 3) % 5 + 1, "rfm_cell": "111",
            "rfm_segment": segments[i % 4], "cluster_id": i % 3, "cluster_label": ["high value", "mid", "low"][i % 3],
            "model_version": "m1", "value": None, "last_event_at": None, "last_event_type": None, "event_count": 0,
            "person_id": f"P{i:016x}", "customer_ids": [f"c{i:04d}"] + ([f"c{i + 500:04d}"] if i % 6 == 0 else []),
            "engagement_segment": "Buyer", "sessions": i % 4, "sessions_30d": 0, "sessions_90d": i % 2,
            "page_views": i, "product_views": i % 3, "add_to_carts": i % 2, "carts_abandoned": 0,
            "last_seen_at": "2024-03-30T10:00:00" if i % 4 else None, "engagement_recency_days": 2 if i % 4 else None,
        })
    return docs


@pytest.fixture()
def documents() -> list[dict[str, Any]]:
    return sample_documents()


@pytest.fixture()
def os_client_factory():
    return make_client


@pytest.fixture(params=["embedded", "opensearch"])
def store_factory(request, tmp_path, fake_opensearch):
    """Each contract test runs against both adapters: store_factory(name) makes a store of the
    test's adapter (a folder, or an alias in the same fake cluster)."""
    def make(name: str = "profiles"):
        if request.param == "embedded":
            from rfmlake.profiles.embedded import EmbeddedProfileStore

            return EmbeddedProfileStore(tmp_path / name)
        from rfmlake.profiles.opensearch import OpenSearchProfileStore

        return OpenSearchProfileStore(make_client(fake_opensearch), alias=f"test-{name}")

    return make


@pytest.fixture()
def store(store_factory):
    return store_factory()
