"""The customer_value stage on a small hand-built gold layer: gold.customer_value in the catalog,
the stored value model, the report with its calibration rows, and a clear error on unusable data."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.settings import load_settings
from rfmlake.value.job import run_customer_value
from value_lakes import AS_OF, write_simulated_gold


def write_gold(lake: Lake, n: int = 1500, seed: int = 2) -> None:
    write_simulated_gold(lake, n=n, seed=seed, bgnbd=(0.9, 30.0, 1.5, 4.0), gamma_gamma=(5.0, 4.0, 20.0),
                         max_first_days=700, zero_value_orders=5)


def context(lake: Lake, tmp_path: Path, **overrides: object) -> RunContext:
    return RunContext(landing_dir=tmp_path / "landing", lake=lake, settings=load_settings(overrides=overrides))


def test_customer_value_stage_writes_gold_table_model_and_report(lake: Lake, tmp_path: Path) -> None:
    write_gold(lake)
    ctx = context(lake, tmp_path, **{"value.horizon_days": 180})
    report = run_customer_value(ctx)

    con = connect(lake)
    columns = [r[0] for r in con.execute("DESCRIBE gold.customer_value").fetchall()]
    assert columns == ["customer_id", "as_of_date", "repeat_orders", "p_alive", "expected_orders_180d",
                       "expected_order_value", "predicted_clv_180d", "model_version"]
    rows, bad, versions, as_of = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE NOT isfinite(p_alive) OR NOT isfinite(expected_orders_180d)
                                          OR p_alive < 0 OR p_alive > 1 OR predicted_clv_180d < 0),
               count(DISTINCT model_version), max(as_of_date)
        FROM gold.customer_value""").fetchone()
    assert rows == 1500 and bad == 0 and versions == 1 and as_of == AS_OF
    one_timers_alive = con.execute(
        "SELECT min(p_alive) FROM gold.customer_value WHERE repeat_orders = 0").fetchone()[0]
    assert one_timers_alive == 1.0

    stored = Path(report["model_path"])
    assert stored.is_file() and report["model_version"] in str(stored)
    assert {"r", "alpha", "a", "b"} <= set(report["bgnbd"]) and {"p", "q", "v"} <= set(report["gamma_gamma"])
    calibration = report["calibration"]
    assert calibration is not None and calibration["buckets"][0]["bucket"] == "0"
    assert (ctx.run_dir / "customer_value_report.json").is_file()


def test_customer_value_refuses_data_without_repeat_orders(lake: Lake, tmp_path: Path) -> None:
    lake.write_arrow("gold", "customer_rfm_features", pa.table({
        "customer_id": ["A", "B", "C"],
        "as_of_date": pa.array([AS_OF] * 3, pa.date32()),
        "first_order_date": pa.array([AS_OF - timedelta(days=d) for d in (3, 30, 300)], pa.date32()),
        "last_order_date": pa.array([AS_OF - timedelta(days=d) for d in (3, 30, 300)], pa.date32()),
        "recency_days": pa.array([3, 30, 300], pa.int32()),
        "frequency": pa.array([1, 1, 1], pa.int32()),
        "monetary": pa.array([Decimal("10.00")] * 3, pa.decimal128(18, 2)),
    }))
    with pytest.raises(PipelineError, match="none of the 3 customers has a repeat order"):
        run_customer_value(context(lake, tmp_path))
    assert lake.current("gold", "customer_value") is None
