"""A small, hand-checkable lake for the saved queries and the dashboard: five customers (A, C, D, E,
F scored; B only ordered), nine orders, two segmentation dates. Expected results in the tests are
worked out by hand from these rows (see the comments there)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from rfmlake.lake import Lake
from rfmlake.segmentation.migration import MIGRATION_SCHEMA
from rfmlake.segmentation.segment import CUSTOMER_RFM_SCHEMA, HISTORY_SCHEMA
from rfmlake.value.model import value_schema

D = date.fromisoformat
M2 = pa.decimal128(18, 2)

# order_id, customer_id, order_date, status, amount_reporting, rate_to_reporting, is_rfm_counted
ORDERS = [
    ("o1", "A", "2024-01-05", "completed", "100.00", "1", True),
    ("o2", "A", "2024-02-10", "completed", "50.00", "1", True),
    ("o3", "B", "2024-01-20", "completed", "30.00", "1", True),
    ("o4", "B", "2024-03-03", "cancelled", "999.00", "1", False),
    ("o5", "C", "2024-02-01", "completed", "200.00", "1", True),
    ("o6", "C", "2024-04-15", "completed", "20.00", "1", True),
    ("o7", "D", "2024-03-31", "completed", "10.00", "0.5", True),
    ("o8", "A", "2024-04-02", "returned", "40.00", "1", False),
    ("o9", "E", "2024-02-15", "completed", "60.00", "1", True),
]
# order_id, line_number, product_id, quantity, line_amount (order currency)
ORDER_ITEMS = [
    ("o1", 1, "P1", 2, "80.00"), ("o1", 2, "P2", 1, "20.00"),
    ("o2", 1, "P2", 5, "50.00"),
    ("o3", 1, "P1", 1, "30.00"),
    ("o5", 1, "P1", 1, "200.00"),
    ("o6", 1, "P3", 1, "20.00"),
    ("o7", 1, "P2", 2, "20.00"),
    ("o8", 1, "P3", 1, "40.00"),
    ("o9", 1, "P3", 3, "60.00"),
]
PRODUCTS = [("P1", "Teapot", "Kitchen"), ("P2", "Beanie", "Apparel"), ("P3", "Lamp", "Outdoor")]
HISTORY = [
    ("2024-03-01", "A", "Loyal", "Mid value"), ("2024-03-01", "B", "New", "Low value"),
    ("2024-03-01", "C", "Champions", "High value"), ("2024-03-01", "E", "Loyal", "Mid value"),
    ("2024-05-01", "A", "Loyal", "Mid value"), ("2024-05-01", "C", "Champions", "High value"),
    ("2024-05-01", "D", "New", "Low value"), ("2024-05-01", "E", "Champions", "High value"),
]
# dimension, from, to, from_segment, to_segment, customers (an older pair and the other dimension too)
MIGRATION = [
    ("rfm_segment", "2024-01-01", "2024-03-01", None, "Loyal", 2),
    ("rfm_segment", "2024-03-01", "2024-05-01", "Champions", "Champions", 1),
    ("rfm_segment", "2024-03-01", "2024-05-01", "Loyal", "Loyal", 1),
    ("rfm_segment", "2024-03-01", "2024-05-01", "Loyal", "Champions", 1),
    ("rfm_segment", "2024-03-01", "2024-05-01", "New", None, 1),
    ("rfm_segment", "2024-03-01", "2024-05-01", None, "New", 1),
    ("cluster_label", "2024-03-01", "2024-05-01", "Mid value", "High value", 1),
]
# customer_id, recency, frequency, monetary, r, f, m, segment, cluster_id, cluster_label, last_order_date
CUSTOMER_RFM = [
    ("A", 60, 2, "150.00", 3, 4, 4, "Loyal", 1, "Mid value", "2024-02-10"),
    ("C", 17, 2, "220.00", 5, 2, 5, "Champions", 0, "High value", "2024-04-15"),
    ("D", 31, 1, "10.00", 5, 1, 1, "New", 2, "Low value", "2024-03-31"),
    ("E", 76, 1, "60.00", 2, 1, 4, "Champions", 0, "High value", "2024-02-15"),
    ("F", 400, 3, "500.00", 1, 5, 5, "Cannot Lose Them", 0, "High value", "2023-03-28"),
    ("G", 300, 1, "40.00", 2, 1, 3, "Hibernating", 2, "Low value", "2023-07-06"),
]
# customer_id, p_alive, expected_orders, expected_order_value, predicted_clv
CUSTOMER_VALUE = [
    ("A", 0.9, 1.5, "75.00", "112.50"), ("C", 0.95, 2.0, "110.00", "220.00"),
    ("D", 0.8, 0.5, "10.00", "5.00"), ("E", 0.6, 0.4, "60.00", "24.00"),
    ("F", 0.2, 0.1, "166.67", "16.67"), ("G", 0.3, 0.1, "40.00", "4.00"),
]
AS_OF = "2024-05-01"


def _dec(values: list[str]) -> pa.Array:
    return pa.array([Decimal(v) for v in values], M2)


def build_analytics_lake(root: Path, *, with_value: bool = True) -> Lake:
    lake = Lake(root)
    lake.write_arrow("gold", "fct_orders", pa.table({
        "order_id": [o[0] for o in ORDERS],
        "customer_id": [o[1] for o in ORDERS],
        "order_date": pa.array([D(o[2]) for o in ORDERS], pa.date32()),
        "status": [o[3] for o in ORDERS],
        "amount_reporting": _dec([o[4] for o in ORDERS]),
        "rate_to_reporting": pa.array([Decimal(o[5]) for o in ORDERS], pa.decimal128(18, 8)),
        "is_rfm_counted": [o[6] for o in ORDERS],
        "reporting_currency": ["EUR"] * len(ORDERS),
    }))
    lake.write_arrow("silver", "order_items", pa.table({
        "order_id": [i[0] for i in ORDER_ITEMS],
        "line_number": pa.array([i[1] for i in ORDER_ITEMS], pa.int32()),
        "product_id": [i[2] for i in ORDER_ITEMS],
        "quantity": pa.array([i[3] for i in ORDER_ITEMS], pa.int32()),
        "line_amount": _dec([i[4] for i in ORDER_ITEMS]),
    }))
    lake.write_arrow("silver", "products", pa.table({
        "product_id": [p[0] for p in PRODUCTS], "name": [p[1] for p in PRODUCTS],
        "category": [p[2] for p in PRODUCTS],
    }))
    lake.write_arrow("gold", "segment_membership_history", pa.table({
        "as_of_date": [D(h[0]) for h in HISTORY], "customer_id": [h[1] for h in HISTORY],
        "rfm_segment": [h[2] for h in HISTORY], "cluster_label": [h[3] for h in HISTORY],
    }, schema=HISTORY_SCHEMA))
    lake.write_arrow("gold", "segment_migration", pa.table({
        "dimension": [m[0] for m in MIGRATION], "from_as_of_date": [D(m[1]) for m in MIGRATION],
        "to_as_of_date": [D(m[2]) for m in MIGRATION], "from_segment": [m[3] for m in MIGRATION],
        "to_segment": [m[4] for m in MIGRATION], "customers": [m[5] for m in MIGRATION],
    }, schema=MIGRATION_SCHEMA))
    lake.write_arrow("gold", "customer_rfm", pa.table({
        "customer_id": [c[0] for c in CUSTOMER_RFM],
        "as_of_date": [D(AS_OF)] * len(CUSTOMER_RFM),
        "first_order_date": [D(c[10]) for c in CUSTOMER_RFM],
        "last_order_date": [D(c[10]) for c in CUSTOMER_RFM],
        "recency_days": [c[1] for c in CUSTOMER_RFM],
        "frequency": [c[2] for c in CUSTOMER_RFM],
        "monetary": [Decimal(c[3]) for c in CUSTOMER_RFM],
        "avg_order_value": [(Decimal(c[3]) / c[2]).quantize(Decimal("0.01")) for c in CUSTOMER_RFM],
        "r_score": [c[4] for c in CUSTOMER_RFM], "f_score": [c[5] for c in CUSTOMER_RFM],
        "m_score": [c[6] for c in CUSTOMER_RFM],
        "rfm_cell": [f"{c[4]}{c[5]}{c[6]}" for c in CUSTOMER_RFM],
        "rfm_segment": [c[7] for c in CUSTOMER_RFM], "cluster_id": [c[8] for c in CUSTOMER_RFM],
        "cluster_label": [c[9] for c in CUSTOMER_RFM], "model_version": ["seg-test"] * len(CUSTOMER_RFM),
    }, schema=CUSTOMER_RFM_SCHEMA))
    if with_value:
        lake.write_arrow("gold", "customer_value", pa.table({
            "customer_id": [v[0] for v in CUSTOMER_VALUE],
            "as_of_date": [D(AS_OF)] * len(CUSTOMER_VALUE),
            "repeat_orders": [0] * len(CUSTOMER_VALUE),
            "p_alive": [v[1] for v in CUSTOMER_VALUE],
            "expected_orders_365d": [v[2] for v in CUSTOMER_VALUE],
            "expected_order_value": [Decimal(v[3]) for v in CUSTOMER_VALUE],
            "predicted_clv_365d": [Decimal(v[4]) for v in CUSTOMER_VALUE],
            # margin 1, no discount: the discounted margin CLV equals the plain one
            "discounted_margin_clv_365d": [Decimal(v[4]) for v in CUSTOMER_VALUE],
            "model_version": ["val-test"] * len(CUSTOMER_VALUE),
        }, schema=value_schema(365)))
    return lake
