"""Tiny, clean silver and gold tables shaped like the contract. Tests break one thing at a time by
passing replacement columns to the fixtures in conftest.py."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from rfmlake.lake import Lake

RUN_AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
SEGMENTS = ("Champions", "Loyal", "At Risk", "Lost")
CURRENCIES = frozenset({"EUR", "USD"})


def tok(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def ts(day: int, hour: int = 10) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=UTC)


def dec(values: list[Any], scale: int) -> pa.Array:
    return pa.array([None if v is None else Decimal(str(v)) for v in values], pa.decimal128(18, scale))


TS = pa.timestamp("us", tz="UTC")


def _lineage(n: int) -> dict[str, Any]:
    return {"_source_file": [f"f{i}.csv" for i in range(n)], "_row_hash": [tok(str(i)) for i in range(n)]}


def silver_tables() -> dict[str, dict[str, Any]]:
    """Column name -> values (or a typed pyarrow array) per silver table; all expectations pass."""
    return {
        "customers": {
            "customer_id": ["c1", "c2", "c3"],
            "email_token": [tok("a@x.com"), tok("b@x.com"), None],
            "phone_token": [tok("+4611"), None, None],
            "first_name_token": [tok("ann"), tok("bo"), None],
            "last_name_token": [tok("lee"), None, None],
            "has_email": [True, True, False],
            "has_phone": [True, False, False],
            "country": ["SE", "DE", None],
            "city": ["Lund", "Bonn", None],
            "postal_code": ["22100", "53111", None],
            "created_at": pa.array([ts(1), ts(2), ts(3)], TS),
            "updated_at": pa.array([ts(1), ts(2), ts(3)], TS),
            "marketing_opt_in": [True, None, False],
            **_lineage(3),
        },
        "orders": {
            "order_id": ["o1", "o2", "o3", "o4"],
            "customer_id": ["c1", "c1", "c2", "guest9"],
            "order_ts": pa.array([ts(1), ts(5), ts(7), ts(9)], TS),
            "order_date": pa.array([date(2024, 5, d) for d in (1, 5, 7, 9)], pa.date32()),
            "status": ["completed", "completed", "returned", "pending"],
            "currency": ["EUR", "USD", "EUR", "EUR"],
            "order_total": dec([10, 20.5, None, 3], 2),
            **_lineage(4),
        },
        "order_items": {
            "order_id": ["o1", "o1", "o2", "o3"],
            "line_number": pa.array([1, 2, 1, 1], pa.int32()),
            "product_id": ["p1", "p2", "p1", "p2"],
            "quantity": pa.array([1, 2, 1, 3], pa.int32()),
            "unit_price": dec([4, 3, 20.5, 0], 4),
            "discount": dec([0, 0, 0, 0], 2),
            "line_amount": dec([4, 6, 20.5, 0], 2),
            **_lineage(4),
        },
        "products": {
            "product_id": ["p1", "p2"],
            "name": ["Mug", "Tee"],
            "category": ["home", "apparel"],
            "brand": ["A", "B"],
            "price": dec([4, 3], 4),
            "currency": ["EUR", "EUR"],
            **_lineage(2),
        },
        "events": {
            "event_id": ["e1", "e2"],
            "event_ts": pa.array([ts(1), ts(2)], TS),
            "event_date": pa.array([date(2024, 5, 1), date(2024, 5, 2)], pa.date32()),
            "event_type": ["page_view", "add_to_cart"],
            "customer_id": ["c1", None],
            "anonymous_id": ["a1", "a2"],
            "session_id": ["s1", "s2"],
            "product_id": [None, "p1"],
            "url": ["/p/1?ref=news", "/cart"],
            "referrer": [None, "https://example.com/"],
            "user_agent": ["UA", "UA"],
            "ip_token": [tok("10.0.0.1"), tok("10.0.0.2")],
            **_lineage(2),
        },
        "currency_rates": {
            "rate_date": pa.array([date(2024, 5, 1), date(2024, 5, 2)], pa.date32()),
            "base_currency": ["EUR", "EUR"],
            "currency": ["USD", "USD"],
            "rate": [1.0868, 1.0901],
            **_lineage(2),
        },
    }


def gold_tables() -> dict[str, dict[str, Any]]:
    as_of = [date(2024, 5, 10)] * 2
    features = {
        "customer_id": ["c1", "c2"],
        "as_of_date": pa.array(as_of, pa.date32()),
        "first_order_date": pa.array([date(2024, 5, 1), date(2024, 5, 7)], pa.date32()),
        "last_order_date": pa.array([date(2024, 5, 5), date(2024, 5, 7)], pa.date32()),
        "recency_days": pa.array([5, 3], pa.int32()),
        "frequency": pa.array([2, 1], pa.int64()),
        "monetary": dec([28.86, 10], 2),
        "avg_order_value": dec([14.43, 10], 2),
        "reporting_currency": ["EUR", "EUR"],
    }
    rfm = {
        **{k: v for k, v in features.items() if k != "reporting_currency"},
        "r_score": pa.array([5, 4], pa.int32()),
        "f_score": pa.array([5, 1], pa.int32()),
        "m_score": pa.array([5, 1], pa.int32()),
        "rfm_cell": ["555", "411"],
        "rfm_segment": ["Champions", "At Risk"],
        "cluster_id": pa.array([0, 1], pa.int32()),
        "cluster_label": ["high value", "low value"],
        "model_version": ["m1", "m1"],
    }
    history = {
        "as_of_date": pa.array([date(2024, 4, 10), date(2024, 5, 10), date(2024, 5, 10)], pa.date32()),
        "customer_id": ["c1", "c1", "c2"],
        "rfm_segment": ["Loyal", "Champions", "At Risk"],
        "cluster_label": ["high value", "high value", "low value"],
    }
    return {"customer_rfm_features": features, "customer_rfm": rfm, "segment_membership_history": history}


def write_table(lake: Lake, zone: str, name: str, columns: dict[str, Any]) -> None:
    lake.write_arrow(zone, name, pa.table(columns))
