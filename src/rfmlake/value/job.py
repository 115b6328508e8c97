"""The customer_value stage, local runtime: gold.customer_rfm_features (+ gold.fct_orders for
per-order amounts) -> gold.customer_value, the stored value model, and the value report (fit and
calibration vs holdout) in the run folder."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.value.calibration import holdout_check
from rfmlake.value.fitting import FitError
from rfmlake.value.model import (
    OUTPUT_TABLE,
    CustomerValueModel,
    customer_value_to_arrow,
    value_columns,
    value_inputs,
)

REPORT_FILE = "customer_value_report.json"
FEATURES_TABLE = "customer_rfm_features"
ORDERS_TABLE = "fct_orders"
MIN_HOLDOUT_DAYS = 7


def read_counted_orders(lake: Lake) -> pd.DataFrame | None:
    """Counted orders of gold.fct_orders with their revenue (0 for returned orders counted under
    returns_policy 'net', as in the RFM monetary); None when the mart is absent."""
    ref = lake.current("gold", ORDERS_TABLE)
    if ref is None:
        return None
    table = pq.read_table(ref.path, columns=["order_id", "customer_id", "ordered_at", "order_date", "status",
                                             "amount_reporting", "is_rfm_counted"]).to_pandas()
    counted = table[table["is_rfm_counted"].fillna(False).astype(bool)].copy()
    amount = pd.to_numeric(counted["amount_reporting"].astype("object")).astype("float64").fillna(0.0)
    counted["revenue"] = np.where(counted["status"] == "returned", 0.0, amount)
    return counted


def default_holdout_days(orders: pd.DataFrame, as_of: date, horizon_days: int) -> int:
    first = pd.to_datetime(orders["order_date"]).min()
    span = (pd.Timestamp(as_of) - first).days
    return int(min(horizon_days, span // 3))


def run_customer_value(ctx: RunContext) -> dict[str, Any]:
    lake = ctx.lake
    ref = lake.current("gold", FEATURES_TABLE)
    if ref is None:
        raise PipelineError(f"gold.{FEATURES_TABLE} does not exist in the lake at {lake}; run dbt_build first")
    features = pq.read_table(ref.path).to_pandas()
    if features.empty:
        raise PipelineError(f"gold.{FEATURES_TABLE} is empty: no customer to value")
    as_of = pd.to_datetime(features["as_of_date"]).max().date()
    orders = read_counted_orders(lake)
    inputs = value_inputs(features, orders)

    from rfmlake.segmentation.job import model_store

    seg_version = model_store(lake).current_version()
    horizon = ctx.settings.value.horizon_days
    model = CustomerValueModel.fit(inputs, horizon, as_of=as_of, segmentation_model_version=seg_version)
    predictions = model.predict(inputs)
    version = model.model_version
    lake.write_arrow("gold", OUTPUT_TABLE, customer_value_to_arrow(predictions, as_of, horizon, version))
    model_path = model.save(lake.models_dir / "value")

    orders_col, clv_col = value_columns(horizon)
    report: dict[str, Any] = {
        "model_version": version,
        "segmentation_model_version": seg_version,
        "as_of_date": as_of.isoformat(),
        "horizon_days": horizon,
        "customers": len(inputs),
        "repeat_customers": int((inputs["x"] > 0).sum()),
        "bgnbd": model.bgnbd.to_dict(),
        "gamma_gamma": model.gamma_gamma.to_dict(),
        "population_mean_order_value": round(model.gamma_gamma.population_mean(), 4),
        "totals": {
            orders_col: round(float(predictions[orders_col].sum()), 2),
            clv_col: round(float(predictions[clv_col].sum()), 2),
            "mean_p_alive": round(float(predictions["p_alive"].mean()), 4),
        },
        "p_alive_histogram": _histogram(predictions["p_alive"].to_numpy(), np.linspace(0.0, 1.0, 11)),
        "model_path": str(model_path),
        "calibration": None,
        "notes": [],
    }
    if model.bgnbd.fit_.at_bound or model.gamma_gamma.fit_.at_bound:
        report["notes"].append(f"parameters at the search bound (weakly identified by this data): "
                               f"{list(model.bgnbd.fit_.at_bound) + list(model.gamma_gamma.fit_.at_bound)}")
    report["calibration"] = _calibration(orders, as_of, ctx.settings.value.holdout_days, horizon, report["notes"])
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _calibration(orders: pd.DataFrame | None, as_of: date, holdout_days: int | None, horizon: int,
                 notes: list[str]) -> dict[str, Any] | None:
    if orders is None or orders.empty:
        notes.append("calibration check skipped: gold.fct_orders is absent")
        return None
    days = holdout_days if holdout_days is not None else default_holdout_days(orders, as_of, horizon)
    if days < MIN_HOLDOUT_DAYS:
        notes.append(f"calibration check skipped: the history allows a holdout of only {days} day(s)")
        return None
    origin = pd.Timestamp("1970-01-01")
    frame = pd.DataFrame({
        "customer_id": orders["customer_id"].astype(str),
        "day": (pd.to_datetime(orders["order_date"]) - origin).dt.days.astype("float64"),
    })
    end = float((pd.Timestamp(as_of) - origin).days) - days
    try:
        check = holdout_check(frame, end, float(days))
    except (FitError, ValueError) as exc:
        notes.append(f"calibration check skipped: {exc}")
        return None
    result = check.to_dict()
    result["calibration_end_date"] = (origin + pd.Timedelta(days=end)).date().isoformat()
    return result


def _histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}
