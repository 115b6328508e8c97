"""Customer value: BG/NBD + Gamma-Gamma over the RFM inputs, the stored value model, and the
gold.customer_value rows.

The value model is fitted at most every `value.refit_every_days` (ADR 0023; the parameters describe
the customer base as of the fitting run, which later runs predict with) and stored at
`<lake>/_system/models/value/<model_version>/model.json` with the segmentation model version it ran
beside; model_version is "val-" + 12 hex digits of the sha256 of its content.

A purchase is a day with at least one counted order (purchase_period "day", the default, as in
Fader, Hardie & Lee 2005 and lifetimes / PyMC-Marketing) or each counted order ("order"). Several
orders of one customer on one day are then one purchase in x, t_x and the Gamma-Gamma mean, whose
value is the day's total.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rfmlake.errors import PipelineError
from rfmlake.value.bgnbd import BetaGeoModel
from rfmlake.value.fitting import NUMERIC_ERRORS, FitError
from rfmlake.value.gamma_gamma import GammaGammaModel

MODEL_FORMAT = 1
OUTPUT_TABLE = "customer_value"
INPUT_COLUMNS: tuple[str, ...] = ("customer_id", "x", "t_x", "T", "repeat_mean")
PURCHASE_PERIODS: tuple[str, ...] = ("day", "order")
DISCOUNT_STEP_DAYS = 30  # the discounted CLV discounts each month's expected purchases at its end


def value_columns(horizon_days: int) -> tuple[str, str]:
    return f"expected_orders_{horizon_days}d", f"predicted_clv_{horizon_days}d"


def discounted_column(horizon_days: int) -> str:
    return f"discounted_margin_clv_{horizon_days}d"


def value_schema(horizon_days: int) -> pa.Schema:
    orders, clv = value_columns(horizon_days)
    return pa.schema([
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("as_of_date", pa.date32(), nullable=False),
        pa.field("repeat_orders", pa.int32(), nullable=False),
        pa.field("p_alive", pa.float64(), nullable=False),
        pa.field(orders, pa.float64(), nullable=False),
        pa.field("expected_order_value", pa.decimal128(18, 2), nullable=False),
        pa.field(clv, pa.decimal128(18, 2), nullable=False),
        pa.field(discounted_column(horizon_days), pa.decimal128(18, 2), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
    ])


def _days(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.days.to_numpy().astype("float64")


def value_inputs(features: pd.DataFrame, orders: pd.DataFrame | None = None,
                 purchase_period: str = "day", *, purchases: pd.DataFrame | None = None) -> pd.DataFrame:
    """x, t_x, T (days) and the mean value of the repeat purchases per customer of
    gold.customer_rfm_features.

    `purchases`: per customer, the number of purchases and the mean value of those after the first
    (PURCHASE_SUMMARY_SQL: read_purchase_summary over the lake, summarize_purchases over `orders`, the
    counted orders of gold.fct_orders). With purchase_period "day" a purchase is a customer's day with
    orders (its value the day's revenue), with "order" each order. With neither only order counts are
    known: x is frequency - 1 and the mean of all orders (monetary / frequency) stands in for the
    repeat mean, whatever the period (the caller notes it)."""
    if purchase_period not in PURCHASE_PERIODS:
        raise ValueError(f"purchase_period must be one of {list(PURCHASE_PERIODS)}, got {purchase_period!r}")
    if purchases is None and orders is not None:
        purchases = summarize_purchases(orders, purchase_period)
    frame = features.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    customer_ids = frame["customer_id"].astype(str)
    x = frame["frequency"].to_numpy().astype("float64") - 1.0
    if np.any(x < 0):
        raise PipelineError("gold.customer_rfm_features has a customer with frequency < 1")
    t_x = _days(frame["last_order_date"], frame["first_order_date"])
    T = _days(frame["as_of_date"], frame["first_order_date"])
    if np.any(t_x < 0) or np.any(t_x > T):
        raise PipelineError("gold.customer_rfm_features has first_order_date after last_order_date or as_of_date")
    monetary = pd.to_numeric(frame["monetary"].astype("object")).astype("float64").to_numpy()
    if purchases is None:
        # Several orders on one day: BG/NBD counts them all; t_x = 0 with x > 0 (all on the first
        # day) is valid for the likelihood (the last order at time 0+).
        repeat_mean = np.where(x > 0, monetary / np.maximum(x + 1.0, 1.0), np.nan)
    else:
        summary = purchases.set_index(purchases["customer_id"].astype(str))
        counts = summary["purchases"].reindex(customer_ids)
        if counts.isna().any():
            missing = customer_ids[counts.isna().to_numpy()].iloc[0]
            raise PipelineError(f"gold.fct_orders has no counted order of customer {missing!r} of "
                                "gold.customer_rfm_features; rebuild the marts (dbt_build)")
        x = counts.to_numpy().astype("float64") - 1.0
        means = pd.to_numeric(summary["repeat_mean"].reindex(customer_ids)).to_numpy(dtype="float64")
        repeat_mean = np.where(x > 0, means, np.nan)
    repeat_mean = np.where(np.isnan(repeat_mean), np.nan, np.clip(repeat_mean, 0.0, None))
    return pd.DataFrame({"customer_id": customer_ids, "x": x, "t_x": t_x, "T": T, "repeat_mean": repeat_mean})


# Per customer: purchases (a day with counted orders, or each order) and the mean value of those after
# the first, over a relation `counted_orders` (customer_id, order_id, ordered_at, order_date, revenue).
# One engine pass over all orders (DuckDB here; the history never passes through pandas).
PURCHASE_SUMMARY_SQL = """
with purchases as (
    select customer_id, {period_key} as period_key, min(ordered_at) as first_at, min(order_id) as first_order,
           sum(revenue) as revenue
    from counted_orders
    group by customer_id, {period_key}
),
ranked as (
    select *, row_number() over (partition by customer_id order by {first_by}) as position
    from purchases
)
select customer_id, count(*) as purchases, avg(revenue) filter (where position > 1) as repeat_mean
from ranked
group by customer_id
"""
PERIOD_KEYS = {"day": "order_date", "order": "order_id"}
# which purchase is the first: the earliest day; the earliest order (by time, then id)
FIRST_BY = {"day": "period_key", "order": "first_at nulls last, first_order"}


def purchase_summary_sql(purchase_period: str) -> str:
    if purchase_period not in PURCHASE_PERIODS:
        raise ValueError(f"purchase_period must be one of {list(PURCHASE_PERIODS)}, got {purchase_period!r}")
    return PURCHASE_SUMMARY_SQL.format(period_key=PERIOD_KEYS[purchase_period], first_by=FIRST_BY[purchase_period])


def summarize_purchases(orders: pd.DataFrame, purchase_period: str) -> pd.DataFrame:
    """PURCHASE_SUMMARY_SQL over a DataFrame of counted orders (customer_id, order_id, ordered_at,
    order_date, revenue)."""
    import duckdb

    from rfmlake.lake.duck import fetch

    sql = purchase_summary_sql(purchase_period)
    counted = orders.assign(
        customer_id=orders["customer_id"].astype(str), order_id=orders["order_id"].astype(str),
        ordered_at=pd.to_datetime(orders["ordered_at"]), order_date=pd.to_datetime(orders["order_date"]),
        revenue=pd.to_numeric(orders["revenue"].astype("object")).astype("float64"),
    )[["customer_id", "order_id", "ordered_at", "order_date", "revenue"]]
    con = duckdb.connect()
    try:
        con.register("counted_orders", counted)
        return fetch(con, sql).df()
    finally:
        con.close()


def below_minimum(inputs: pd.DataFrame, min_customers: int, min_repeat_customers: int) -> str | None:
    """Why `inputs` (value_inputs) are too few to fit BG/NBD and Gamma-Gamma, or None. The models
    have 4 and 3 parameters; the repeat customers carry all the information on dropout and spend,
    and Gamma-Gamma needs at least two distinct positive repeat spends to see a spread."""
    customers = len(inputs)
    repeat = inputs["x"].to_numpy() > 0
    repeaters = int(repeat.sum())
    spends = inputs["repeat_mean"].to_numpy()[repeat]
    distinct = len(np.unique(spends[np.isfinite(spends) & (spends > 0)]))
    if customers >= min_customers and repeaters >= min_repeat_customers and distinct >= 2:
        return None
    return (f"{customers} customer(s), {repeaters} with repeat purchases, {distinct} distinct positive repeat "
            f"spend value(s); at least {min_customers} customers, {min_repeat_customers} with repeat purchases "
            "and 2 distinct repeat spends are needed to fit BG/NBD and Gamma-Gamma "
            "(settings value.min_customers, value.min_repeat_customers)")


def _naming(model: str, exc: FitError) -> str:
    """A model's FitError message, saying which model failed."""
    return str(exc) if model in str(exc) else f"{model}: {exc}"


@dataclass
class CustomerValueModel:
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    horizon_days: int
    fitted_on: dict[str, Any] = field(default_factory=dict)
    purchase_period: str = "day"
    margin: float = 1.0                  # share of revenue kept as gross margin (discounted_margin_clv)
    annual_discount_rate: float = 0.0    # discounted_margin_clv discounts to as_of at this yearly rate

    @classmethod
    def fit(cls, inputs: pd.DataFrame, horizon_days: int, *, as_of: date,
            segmentation_model_version: str | None = None, purchase_period: str = "day", margin: float = 1.0,
            annual_discount_rate: float = 0.0) -> CustomerValueModel:
        """Fit both models. Raises FitError (with the diagnostics, per model) when a fit does not
        converge (a start that fails numerically counts as not converged), ends with a parameter on
        the search bound (the data cannot pin it: predictions from it would be arbitrary), or the
        data cannot support it; ValueError on malformed inputs (missing, negative or inconsistent
        x, t_x, T), which value_inputs never builds."""
        try:
            bgnbd = BetaGeoModel().fit(inputs["x"].to_numpy(), inputs["t_x"].to_numpy(), inputs["T"].to_numpy())
        except FitError as exc:
            raise FitError(_naming("BG/NBD", exc), {"bgnbd": exc.diagnostics}) from exc
        try:
            gamma_gamma = GammaGammaModel().fit(inputs["x"].to_numpy(),
                                                inputs["repeat_mean"].fillna(0.0).to_numpy())
        except FitError as exc:
            raise FitError(_naming("Gamma-Gamma", exc),
                           {"bgnbd": bgnbd.to_dict(), "gamma_gamma": exc.diagnostics}) from exc
        at_bound = [*(f"BG/NBD {n}" for n in bgnbd.fit_.at_bound),
                    *(f"Gamma-Gamma {n}" for n in gamma_gamma.fit_.at_bound)]
        if at_bound:
            raise FitError(f"parameters at the search bound ({', '.join(at_bound)}): the data cannot pin them, so "
                           "the predictions would be arbitrary",
                           {"bgnbd": bgnbd.to_dict(), "gamma_gamma": gamma_gamma.to_dict()})
        return cls(bgnbd=bgnbd, gamma_gamma=gamma_gamma, horizon_days=horizon_days, fitted_on={
            "as_of_date": as_of.isoformat(), "customers": len(inputs),
            "segmentation_model_version": segmentation_model_version,
        }, purchase_period=purchase_period, margin=margin, annual_discount_rate=annual_discount_rate)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerValueModel:
        """A model as `save` wrote it (its parameters; the fit's diagnostics stay in the file)."""
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"stored value model has format {data.get('format')!r}, expected {MODEL_FORMAT}")
        return cls(bgnbd=BetaGeoModel.from_dict(data["bgnbd"]),
                   gamma_gamma=GammaGammaModel.from_dict(data["gamma_gamma"]),
                   horizon_days=int(data["horizon_days"]), fitted_on=dict(data.get("fitted_on") or {}),
                   purchase_period=str(data["purchase_period"]), margin=float(data["margin"]),
                   annual_discount_rate=float(data["annual_discount_rate"]))

    def params(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "horizon_days": self.horizon_days, "purchase_period": self.purchase_period,
                "margin": self.margin, "annual_discount_rate": self.annual_discount_rate,
                "bgnbd": self.bgnbd.to_dict(), "gamma_gamma": self.gamma_gamma.to_dict(),
                "fitted_on": self.fitted_on}

    @property
    def model_version(self) -> str:
        canonical = json.dumps(self.params(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return "val-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, **self.params()}

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        x, t_x, T = (inputs[c].to_numpy() for c in ("x", "t_x", "T"))
        try:
            p_alive = self.bgnbd.p_alive(x, t_x, T)
            expected = self.bgnbd.expected_orders(float(self.horizon_days), x, t_x, T)
            spend = self.gamma_gamma.expected_spend(x, inputs["repeat_mean"].to_numpy())
            clv = expected * spend
            discounted = self.margin * spend * self.discounted_purchases(x, t_x, T)
        except FitError:
            raise
        except NUMERIC_ERRORS as exc:  # an overflow or domain error at these parameters: no usable prediction
            raise FitError(f"predicting at the fitted parameters failed: {type(exc).__name__}: {exc}",
                           {"bgnbd": self.bgnbd.to_dict(), "gamma_gamma": self.gamma_gamma.to_dict()}) from exc
        for name, values in (("p_alive", p_alive), ("expected orders", expected), ("expected spend", spend),
                             ("predicted CLV", clv), ("discounted margin CLV", discounted)):
            if not np.all(np.isfinite(values)):
                raise FitError(f"{name} is not finite for {int(np.sum(~np.isfinite(values)))} customer(s)",
                               {"bgnbd": self.bgnbd.to_dict(), "gamma_gamma": self.gamma_gamma.to_dict()})
        orders_col, clv_col = value_columns(self.horizon_days)
        return pd.DataFrame({
            "customer_id": inputs["customer_id"].to_numpy(),
            "repeat_orders": x.astype("int32"),
            "p_alive": np.clip(p_alive, 0.0, 1.0),
            orders_col: expected,
            "expected_order_value": spend,
            clv_col: clv,
            discounted_column(self.horizon_days): discounted,
        })

    def discounted_purchases(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """Expected purchases over the horizon, each month's (horizon split into steps of about
        DISCOUNT_STEP_DAYS) discounted to as_of at the end of that month by annual_discount_rate:
        sum_i (E[X(t_i)] - E[X(t_{i-1})]) / (1 + rate) ** (t_i / 365). Equals the expected purchases
        at rate 0 (the increments telescope)."""
        steps = max(1, math.ceil(self.horizon_days / DISCOUNT_STEP_DAYS))
        ends = np.linspace(0.0, float(self.horizon_days), steps + 1)[1:]
        total = np.zeros(len(np.asarray(x)), dtype="float64")
        previous = np.zeros_like(total)
        for end in ends:
            cumulative = self.bgnbd.expected_orders(float(end), x, t_x, T)
            total += (cumulative - previous) / (1.0 + self.annual_discount_rate) ** (end / 365.0)
            previous = cumulative
        return total

    def save(self, root: Path) -> Path:
        path = root / self.model_version / "model.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True, allow_nan=False) + "\n")
        tmp.replace(path)
        return path


def customer_value_to_arrow(predictions: pd.DataFrame, as_of: date, horizon_days: int, model_version: str) -> pa.Table:
    from decimal import Decimal

    schema = value_schema(horizon_days)
    orders_col, clv_col = value_columns(horizon_days)
    discounted_col = discounted_column(horizon_days)
    n = len(predictions)

    def money(values: pd.Series) -> pa.Array:
        return pa.array([Decimal(f"{v:.2f}") for v in values.to_numpy()], type=pa.decimal128(18, 2))

    arrays = [
        pa.array(predictions["customer_id"].astype(str).tolist(), pa.string()),
        pa.array([as_of] * n, pa.date32()),
        pa.array(predictions["repeat_orders"].to_numpy(), pa.int32()),
        pa.array(predictions["p_alive"].to_numpy(), pa.float64()),
        pa.array(predictions[orders_col].to_numpy(), pa.float64()),
        money(predictions["expected_order_value"]),
        money(predictions[clv_col]),
        money(predictions[discounted_col]),
        pa.array([model_version] * n, pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
