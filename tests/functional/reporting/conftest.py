"""A lake with one real run of the segmentation and customer_value stages over hand-built gold
tables (no Spark, no dbt): what `rfmlake report` reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings
from rfmlake.value.simulate import simulate_bgnbd_orders

AS_OF = date(2024, 6, 1)


@dataclass(frozen=True)
class ReportedLake:
    root: Path
    run_id: str

    @property
    def run_dir(self) -> Path:
        return Lake(self.root).runs_dir / self.run_id


def write_gold_orders_and_features(lake: Lake, n: int = 600, seed: int = 11) -> None:
    """gold.fct_orders from a BG/NBD + Gamma-Gamma simulation, and gold.customer_rfm_features
    derived from those orders, as the dbt marts would have them."""
    rng = np.random.default_rng(seed)
    first = rng.integers(1, 720, n)  # days before as_of
    orders = simulate_bgnbd_orders(n, 0.8, 40.0, 1.2, 5.0, first.astype(float) - 1e-9, seed=seed, p=4.0, q=5.0, v=60.0)
    orders["date"] = [AS_OF - timedelta(days=int(f)) + timedelta(days=int(d))
                      for f, d in zip(first[orders["customer_id"]], orders["day"], strict=True)]
    orders["amount"] = orders["amount"].round(2)
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


@pytest.fixture(scope="module")
def reported_lake(tmp_path_factory: pytest.TempPathFactory) -> ReportedLake:
    root = tmp_path_factory.mktemp("reporting") / "lake"
    lake = Lake(root)
    write_gold_orders_and_features(lake)
    stages = tuple(s for s in PIPELINE if s.name in {"segmentation", "customer_value"})
    settings = load_settings(overrides={"segmentation.k_max": 6})
    ctx = RunContext(landing_dir=root.parent / "landing", lake=lake, settings=settings, as_of=AS_OF)
    run_pipeline(ctx, stages=stages)
    return ReportedLake(root=root, run_id=ctx.run_id)
