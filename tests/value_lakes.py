"""Gold tables as the dbt marts would hold them, drawn from a BG/NBD + Gamma-Gamma simulation:
gold.fct_orders and gold.customer_rfm_features derived from those orders (no Spark, no dbt)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pyarrow as pa

from rfmlake.lake import Lake
from rfmlake.value.simulate import simulate_bgnbd_orders

AS_OF = date(2024, 6, 1)


def write_simulated_gold(lake: Lake, *, n: int, seed: int, bgnbd: tuple[float, float, float, float],
                         gamma_gamma: tuple[float, float, float], max_first_days: int,
                         zero_value_orders: int = 0) -> None:
    """bgnbd = (r, alpha, a, b); gamma_gamma = (p, q, v); first orders up to max_first_days before AS_OF;
    the first `zero_value_orders` orders get amount 0 (an edge case the value models must survive)."""
    rng = np.random.default_rng(seed)
    first = rng.integers(1, max_first_days, n)  # days before as_of
    p, q, v = gamma_gamma
    orders = simulate_bgnbd_orders(n, *bgnbd, first.astype(float) - 1e-9, seed=seed, p=p, q=q, v=v)
    orders["date"] = [AS_OF - timedelta(days=int(f)) + timedelta(days=int(d))
                      for f, d in zip(first[orders["customer_id"]], orders["day"], strict=True)]
    orders["amount"] = orders["amount"].round(2)
    if zero_value_orders:
        orders.loc[orders.index[:zero_value_orders], "amount"] = 0.0
    orders["cid"] = [f"C{c:05d}" for c in orders["customer_id"]]
    lake.write_arrow("gold", "fct_orders", pa.table({
        "order_id": [f"O{i:07d}" for i in range(len(orders))],
        "customer_id": list(orders["cid"]),
        "ordered_at": pa.array([datetime(d.year, d.month, d.day, 12, tzinfo=UTC) for d in orders["date"]],
                               pa.timestamp("us", tz="UTC")),
        "order_date": pa.array(list(orders["date"]), pa.date32()),
        "status": ["completed"] * len(orders),
        "amount_reporting": pa.array([Decimal(f"{a:.2f}") for a in orders["amount"]], pa.decimal128(18, 2)),
        "is_rfm_counted": [True] * len(orders),
    }))
    per = orders.groupby("cid").agg(first=("date", "min"), last=("date", "max"), frequency=("day", "size"),
                                    monetary=("amount", "sum"))
    lake.write_arrow("gold", "customer_rfm_features", pa.table({
        "customer_id": list(per.index),
        "as_of_date": pa.array([AS_OF] * len(per), pa.date32()),
        "first_order_date": pa.array(list(per["first"]), pa.date32()),
        "last_order_date": pa.array(list(per["last"]), pa.date32()),
        "recency_days": pa.array([(AS_OF - d).days for d in per["last"]], pa.int32()),
        "frequency": pa.array(per["frequency"].to_numpy(), pa.int32()),
        "monetary": pa.array([Decimal(f"{m:.2f}") for m in per["monetary"]], pa.decimal128(18, 2)),
        "avg_order_value": pa.array([Decimal(f"{m / f:.2f}") for m, f in zip(per["monetary"], per["frequency"],
                                                                             strict=True)], pa.decimal128(18, 2)),
    }))
