"""A small gold.customer_rfm_features mart, as the dbt stage writes it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

FEATURES_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("as_of_date", pa.date32()), ("first_order_date", pa.date32()),
    ("last_order_date", pa.date32()), ("recency_days", pa.int32()), ("frequency", pa.int32()),
    ("monetary", pa.decimal128(18, 2)), ("avg_order_value", pa.decimal128(18, 2)),
    ("reporting_currency", pa.string()),
])


def make_features(n: int = 80, as_of: date = date(2024, 6, 1), seed: int = 3) -> pa.Table:
    rng = np.random.RandomState(seed)
    recency = rng.randint(0, 400, n)
    frequency = rng.geometric(0.4, n)
    monetary = np.round(frequency * rng.lognormal(3.8, 0.7, n), 2)
    return pa.table({
        "customer_id": [f"CUST-{i:05d}" for i in range(n)],
        "as_of_date": [as_of] * n,
        "first_order_date": [as_of - timedelta(days=int(r) + 20) for r in recency],
        "last_order_date": [as_of - timedelta(days=int(r)) for r in recency],
        "recency_days": recency.astype("int32"),
        "frequency": frequency.astype("int32"),
        "monetary": [Decimal(f"{m:.2f}") for m in monetary],
        "avg_order_value": [Decimal(f"{m / f:.2f}") for m, f in zip(monetary, frequency, strict=True)],
        "reporting_currency": ["EUR"] * n,
    }, schema=FEATURES_SCHEMA)


@pytest.fixture()
def features_table():
    return make_features
