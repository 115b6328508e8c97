"""The customer_value stage on a small hand-built gold layer: gold.customer_value in the catalog,
the stored value model, the report with its calibration rows, and the skip on data too small to fit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

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
                       "expected_order_value", "predicted_clv_180d", "discounted_margin_clv_180d", "model_version"]
    # Money terms at the defaults (margin 1, 10% a year): discounted, never above the plain CLV.
    above, below = con.execute(
        "SELECT count(*) FILTER (WHERE discounted_margin_clv_180d > predicted_clv_180d), "
        "count(*) FILTER (WHERE discounted_margin_clv_180d < predicted_clv_180d) FROM gold.customer_value").fetchone()
    assert above == 0 and below > 0
    rows, bad, versions, as_of = con.execute("""
        SELECT count(*), count(*) FILTER (WHERE NOT isfinite(p_alive) OR NOT isfinite(expected_orders_180d)
                                          OR p_alive < 0 OR p_alive > 1 OR predicted_clv_180d < 0),
               count(DISTINCT model_version), max(as_of_date)
        FROM gold.customer_value""").fetchone()
    assert rows == 1500 and bad == 0 and versions == 1 and as_of == AS_OF
    one_timers_alive = con.execute(
        "SELECT min(p_alive) FROM gold.customer_value WHERE repeat_orders = 0").fetchone()[0]
    assert one_timers_alive == 1.0

    assert report["status"] == "fitted" and report["purchase_period"] == "day"
    stored = Path(report["model_path"])
    assert stored.is_file() and report["model_version"] in str(stored)
    assert {"r", "alpha", "a", "b"} <= set(report["bgnbd"]) and {"p", "q", "v"} <= set(report["gamma_gamma"])
    calibration = report["calibration"]
    assert calibration is not None and calibration["buckets"][0]["bucket"] == "0"
    assert (ctx.run_dir / "customer_value_report.json").is_file()


def three_one_time_buyers(lake: Lake) -> None:
    lake.write_arrow("gold", "customer_rfm_features", pa.table({
        "customer_id": ["A", "B", "C"],
        "as_of_date": pa.array([AS_OF] * 3, pa.date32()),
        "first_order_date": pa.array([AS_OF - timedelta(days=d) for d in (3, 30, 300)], pa.date32()),
        "last_order_date": pa.array([AS_OF - timedelta(days=d) for d in (3, 30, 300)], pa.date32()),
        "recency_days": pa.array([3, 30, 300], pa.int32()),
        "frequency": pa.array([1, 1, 1], pa.int32()),
        "monetary": pa.array([Decimal("10.00")] * 3, pa.decimal128(18, 2)),
    }))
    days = [AS_OF - timedelta(days=d) for d in (3, 30, 300)]
    lake.write_arrow("gold", "fct_orders", pa.table({
        "order_id": ["o1", "o2", "o3"], "customer_id": ["A", "B", "C"],
        "ordered_at": pa.array([datetime(d.year, d.month, d.day, 12, tzinfo=UTC) for d in days],
                               pa.timestamp("us", tz="UTC")),
        "order_date": pa.array(days, pa.date32()), "status": ["completed"] * 3,
        "amount_reporting": pa.array([Decimal("10.00")] * 3, pa.decimal128(18, 2)), "is_rfm_counted": [True] * 3,
    }))


def test_below_its_minimum_the_stage_is_skipped_and_publishes_no_values(lake: Lake, tmp_path: Path) -> None:
    write_gold(lake)
    run_customer_value(context(lake, tmp_path))
    assert lake.count_rows(lake.require("gold", "customer_value")) == 1500
    three_one_time_buyers(lake)  # a later run on data too small to fit
    ctx = context(lake, tmp_path)
    report = run_customer_value(ctx)
    assert report["status"] == "skipped"
    assert report["skipped"].startswith("3 customer(s), 0 with repeat purchases")
    assert "at least 50 customers, 20 with repeat purchases" in report["skipped"]
    # The earlier run's values are not passed off as this run's: the table is there, empty.
    assert lake.count_rows(lake.require("gold", "customer_value")) == 0
    assert json.loads((ctx.run_dir / "customer_value_report.json").read_text())["status"] == "skipped"


def test_a_failed_fit_is_reported_with_its_diagnostics_and_publishes_nothing(lake: Lake, tmp_path: Path) -> None:
    # Issue 21's shop: two customers with two orders each, minimums lowered so the fit is tried.
    lake.write_arrow("gold", "customer_rfm_features", pa.table({
        "customer_id": ["A", "B"],
        "as_of_date": pa.array([AS_OF] * 2, pa.date32()),
        "first_order_date": pa.array([AS_OF - timedelta(days=d) for d in (31, 29)], pa.date32()),
        "last_order_date": pa.array([AS_OF - timedelta(days=d) for d in (12, 7)], pa.date32()),
        "recency_days": pa.array([12, 7], pa.int32()),
        "frequency": pa.array([2, 2], pa.int32()),
        "monetary": pa.array([Decimal("45.00"), Decimal("80.00")], pa.decimal128(18, 2)),
    }))
    ctx = context(lake, tmp_path, **{"value.min_customers": 2, "value.min_repeat_customers": 2})
    report = run_customer_value(ctx)
    assert report["status"] == "skipped"
    assert report["skipped"].startswith("the fit failed, nothing published: parameters at the "
                                        "search bound")
    assert {"bgnbd", "gamma_gamma"} <= set(report["diagnostics"])
    assert lake.count_rows(lake.require("gold", "customer_value")) == 0
    assert not (lake.models_dir / "value").exists()


def test_purchases_are_summarized_in_the_lake_as_from_the_orders_themselves(lake: Lake) -> None:
    from rfmlake.value.job import read_counted_orders, read_purchase_summary
    from rfmlake.value.model import summarize_purchases

    day = [AS_OF - timedelta(days=d) for d in (90, 90, 40, 40, 10)]
    lake.write_arrow("gold", "fct_orders", pa.table({
        "order_id": ["o1", "o2", "o3", "o4", "o5"], "customer_id": ["A", "A", "A", "A", "B"],
        "ordered_at": pa.array([datetime(d.year, d.month, d.day, 9 + i, tzinfo=UTC) for i, d in enumerate(day)],
                               pa.timestamp("us", tz="UTC")),
        "order_date": pa.array(day, pa.date32()),
        "status": ["completed", "completed", "returned", "completed", "completed"],
        "amount_reporting": pa.array([Decimal(v) for v in ("10.00", "5.00", "99.00", "30.00", "7.00")],
                                     pa.decimal128(18, 2)),
        "is_rfm_counted": [True, True, True, True, False],  # B's only order is not counted: B has no purchase
    }))
    by_day = read_purchase_summary(lake, "day").set_index("customer_id")
    # A: two days; the repeat day is the returned order (0) and 30
    assert by_day.to_dict("index") == {"A": {"purchases": 2, "repeat_mean": 30.0}}
    by_order = read_purchase_summary(lake, "order").set_index("customer_id")
    assert by_order.loc["A", "purchases"] == 4 and by_order.loc["A", "repeat_mean"] == (5.0 + 0.0 + 30.0) / 3
    for period in ("day", "order"):
        in_lake = read_purchase_summary(lake, period).sort_values("customer_id").reset_index(drop=True)
        in_pandas = summarize_purchases(read_counted_orders(lake), period).sort_values("customer_id")
        assert in_lake.to_dict("list") == in_pandas.reset_index(drop=True).to_dict("list")
