"""The customer_value stage, local runtime: gold.customer_rfm_features (+ gold.fct_orders for
per-order amounts) -> gold.customer_value, the stored value model, and the value report (fit and
calibration vs holdout) in the run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch
from rfmlake.pipeline.context import RunContext, earlier_fit
from rfmlake.reporting.quality import VALUE_REPORT
from rfmlake.value.calibration import holdout_check
from rfmlake.value.fitting import FitError
from rfmlake.value.model import (
    OUTPUT_TABLE,
    CustomerValueModel,
    below_minimum,
    customer_value_to_arrow,
    discounted_column,
    purchase_summary_sql,
    value_columns,
    value_inputs,
    value_schema,
)

REPORT_FILE = VALUE_REPORT  # the run folder's file, named where `rfmlake report` reads it
FEATURES_TABLE = "customer_rfm_features"
ORDERS_TABLE = "fct_orders"
MIN_HOLDOUT_DAYS = 7


# The counted orders of gold.fct_orders with their revenue (0 for returned orders counted under
# returns_policy 'net', as in the RFM monetary): the relation PURCHASE_SUMMARY_SQL reads.
COUNTED_ORDERS_VIEW = f"""
    create temp view counted_orders as
    select cast(customer_id as varchar) as customer_id, cast(order_id as varchar) as order_id,
           cast(ordered_at as timestamp) as ordered_at, cast(order_date as date) as order_date,
           case when status = 'returned' then 0.0 else coalesce(cast(amount_reporting as double), 0.0) end as revenue
    from gold.{ORDERS_TABLE}
    where coalesce(is_rfm_counted, false)"""


def _from_counted_orders(lake: Lake, sql: str, memory_limit: str | None) -> pd.DataFrame | None:
    """`sql` over the view counted_orders (COUNTED_ORDERS_VIEW); None when the mart is absent."""
    if lake.current("gold", ORDERS_TABLE) is None:
        return None
    from rfmlake.lake.catalog import connect

    con = connect(lake, zones=("gold",), memory_limit=memory_limit)
    try:
        con.execute(COUNTED_ORDERS_VIEW)
        return fetch(con, sql).to_arrow_table().to_pandas()
    finally:
        con.close()


def read_counted_orders(lake: Lake, memory_limit: str | None = None) -> pd.DataFrame | None:
    """The counted orders themselves (customer_id, order_id, ordered_at, order_date, revenue), for a
    new fit's calibration check; None when the mart is absent."""
    return _from_counted_orders(lake, "select * from counted_orders", memory_limit)


def read_purchase_summary(lake: Lake, purchase_period: str, memory_limit: str | None = None) -> pd.DataFrame | None:
    """Per customer of gold.fct_orders: purchases and the mean value of the repeat ones
    (PURCHASE_SUMMARY_SQL), in one DuckDB pass over the mart; None when the mart is absent."""
    return _from_counted_orders(lake, purchase_summary_sql(purchase_period), memory_limit)


def default_holdout_days(orders: pd.DataFrame, as_of: date, horizon_days: int) -> int:
    first = pd.to_datetime(orders["order_date"]).min()
    span = (pd.Timestamp(as_of) - first).days
    return int(min(horizon_days, span // 3))


@dataclass(frozen=True)
class CarriedModel:
    """The value model an earlier run fitted, which this run predicts with instead of fitting."""

    model: CustomerValueModel
    version: str
    path: Path
    report: dict[str, Any]   # the earlier run's report: the fit and calibration of the run that fitted it
    run_id: str
    as_of_date: date

    def origin(self) -> dict[str, str]:
        return {"run_id": self.run_id, "as_of_date": self.as_of_date.isoformat()}


def carried_model(ctx: RunContext, as_of: date, purchase_period: str) -> CarriedModel | None:
    """The model of the latest successful earlier run (traced back to the run that fitted it) when
    it was fitted with this run's settings at an as_of fewer than `value.refit_every_days` days
    before this run's (not after it). None, so the run fits, on `rfmlake run --full`, with
    refit_every_days 0 or 1, or when that model's file is gone or unreadable."""
    settings = ctx.settings.value
    fit = earlier_fit(ctx, REPORT_FILE, as_of, settings.refit_every_days)
    if fit is None:
        return None
    try:
        path = ctx.lake.models_dir / "value" / fit.model_version / "model.json"  # as model.save wrote it
        stored = json.loads(path.read_text())
        model = CustomerValueModel.from_dict(stored)
    except (KeyError, OSError, TypeError, ValueError):
        return None
    if stored.get("model_version") != fit.model_version:
        return None
    if (model.horizon_days, model.purchase_period, model.margin, model.annual_discount_rate) != (
            settings.horizon_days, purchase_period, settings.margin, settings.annual_discount_rate):
        return None
    return CarriedModel(model, fit.model_version, path, fit.report, fit.run_id, fit.as_of_date)


def run_customer_value(ctx: RunContext) -> dict[str, Any]:
    """Fit the value models, write gold.customer_value and the report. Below the stage's minimum
    (below_minimum) or when the fit fails (FitError: no convergence, numerical failures of the
    optimiser included, a parameter on the search bound, non-finite predictions) nothing is fitted or
    published: gold.customer_value is committed empty,
    so no earlier run's values pass for this one's, and the report says why (status "skipped", with
    the fit's diagnostics when there was one)."""
    lake = ctx.lake
    ref = lake.current("gold", FEATURES_TABLE)
    if ref is None:
        raise PipelineError(f"gold.{FEATURES_TABLE} does not exist in the lake at {lake}; run dbt_build first")
    features = pq.read_table(ref.path).to_pandas()
    if features.empty:
        raise PipelineError(f"gold.{FEATURES_TABLE} is empty: no customer to value")
    as_of = pd.to_datetime(features["as_of_date"]).max().date()
    settings = ctx.settings.value
    purchases = read_purchase_summary(lake, settings.purchase_period, ctx.settings.duckdb_memory_limit)
    inputs = value_inputs(features, purchase_period=settings.purchase_period, purchases=purchases)

    from rfmlake.segmentation.job import model_store

    seg_version = model_store(lake).current_version()
    horizon = settings.horizon_days
    report: dict[str, Any] = {
        "status": "fitted",
        "model_version": None,
        "segmentation_model_version": seg_version,
        "as_of_date": as_of.isoformat(),
        "horizon_days": horizon,
        "purchase_period": settings.purchase_period if purchases is not None else "order",
        "margin": settings.margin,
        "annual_discount_rate": settings.annual_discount_rate,
        "customers": len(inputs),
        "repeat_customers": int((inputs["x"] > 0).sum()),
        "notes": [],
    }
    if purchases is None and settings.purchase_period == "day":
        report["notes"].append("gold.fct_orders is absent: purchases are counted per order, not per day")
    shortfall = below_minimum(inputs, settings.min_customers, settings.min_repeat_customers)
    if shortfall is not None:
        return _skipped(ctx, report, shortfall)
    carried = carried_model(ctx, as_of, report["purchase_period"])
    try:
        if carried is None:
            model = CustomerValueModel.fit(inputs, horizon, as_of=as_of, segmentation_model_version=seg_version,
                                           purchase_period=report["purchase_period"], margin=settings.margin,
                                           annual_discount_rate=settings.annual_discount_rate)
        else:
            model = carried.model
        predictions = model.predict(inputs)
    except FitError as exc:
        report["diagnostics"] = exc.diagnostics
        return _skipped(ctx, report, f"the fit failed, nothing published: {exc}")
    except ValueError as exc:  # malformed inputs (value_inputs checks them first): a bug upstream, not a fit
        raise PipelineError(f"customer value models cannot be fitted on gold.{FEATURES_TABLE} "
                            f"as of {as_of.isoformat()}: {exc}") from None
    if carried is None:
        version = model.model_version
        model_path = model.save(lake.models_dir / "value")
        fit = {"bgnbd": model.bgnbd.to_dict(), "gamma_gamma": model.gamma_gamma.to_dict()}
    else:  # the fit's diagnostics as the fitting run reported them
        version, model_path = carried.version, carried.path
        fit = {name: carried.report[name] for name in ("bgnbd", "gamma_gamma")}
    lake.write_arrow("gold", OUTPUT_TABLE, customer_value_to_arrow(predictions, as_of, horizon, version))

    orders_col, clv_col = value_columns(horizon)
    discounted_col = discounted_column(horizon)
    report.update({
        "model_version": version,
        **fit,
        "population_mean_order_value": round(model.gamma_gamma.population_mean(), 4),
        "totals": {
            orders_col: round(float(predictions[orders_col].sum()), 2),
            clv_col: round(float(predictions[clv_col].sum()), 2),
            discounted_col: round(float(predictions[discounted_col].sum()), 2),
            "mean_p_alive": round(float(predictions["p_alive"].mean()), 4),
        },
        "p_alive_histogram": _histogram(predictions["p_alive"].to_numpy(), np.linspace(0.0, 1.0, 11)),
        "model_path": str(model_path),
    })
    if carried is None:  # the orders themselves only for the check of a new fit
        orders = read_counted_orders(lake, ctx.settings.duckdb_memory_limit)
        report["calibration"] = _calibration(orders, as_of, settings.holdout_days, horizon,
                                             report["purchase_period"], report["notes"])
    else:
        report["model_from"] = carried.origin()
        report["calibration"] = carried.report.get("calibration")
        report["notes"].append(
            f"the value models fitted in run {carried.run_id} (as_of {carried.as_of_date}, same settings) predicted "
            f"this as_of, and their calibration check is carried: fitted again once as_of is "
            f"{settings.refit_every_days} days after it (value.refit_every_days), or on `rfmlake run --full`")
    _write_report(ctx, report)
    return report


def _skipped(ctx: RunContext, report: dict[str, Any], reason: str) -> dict[str, Any]:
    """Publish no values: commit gold.customer_value empty (its schema kept, so queries and the
    profile join still work) and record why in the report."""
    ctx.lake.write_arrow("gold", OUTPUT_TABLE, value_schema(report["horizon_days"]).empty_table())
    report.update({"status": "skipped", "skipped": reason, "calibration": None})
    _write_report(ctx, report)
    return report


def _write_report(ctx: RunContext, report: dict[str, Any]) -> None:
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / REPORT_FILE).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


def _calibration(orders: pd.DataFrame | None, as_of: date, holdout_days: int | None, horizon: int,
                 purchase_period: str, notes: list[str]) -> dict[str, Any] | None:
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
        check = holdout_check(frame, end, float(days), purchase_period)
    except (FitError, ValueError) as exc:
        notes.append(f"calibration check skipped: {exc}")
        return None
    result = check.to_dict()
    result["calibration_end_date"] = (origin + pd.Timedelta(days=end)).date().isoformat()
    return result


def _histogram(values: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    counts, _ = np.histogram(values, bins=edges)
    return {"edges": [round(float(e), 4) for e in edges], "counts": [int(c) for c in counts]}
