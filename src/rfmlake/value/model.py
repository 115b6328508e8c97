"""Customer value: BG/NBD + Gamma-Gamma over the RFM inputs, the stored value model, and the
gold.customer_value rows.

The value model is refitted every run (the parameters describe the customer base as of that run)
and stored at `<lake>/_system/models/value/<model_version>/model.json` with the segmentation model
version it ran beside; model_version is "val-" + 12 hex digits of the sha256 of its content.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rfmlake.errors import PipelineError
from rfmlake.value.bgnbd import BetaGeoModel
from rfmlake.value.fitting import FitError
from rfmlake.value.gamma_gamma import GammaGammaModel

MODEL_FORMAT = 1
OUTPUT_TABLE = "customer_value"
INPUT_COLUMNS: tuple[str, ...] = ("customer_id", "x", "t_x", "T", "repeat_mean")


def value_columns(horizon_days: int) -> tuple[str, str]:
    return f"expected_orders_{horizon_days}d", f"predicted_clv_{horizon_days}d"


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
        pa.field("model_version", pa.string(), nullable=False),
    ])


def _days(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    return (pd.to_datetime(later) - pd.to_datetime(earlier)).dt.days.to_numpy().astype("float64")


def value_inputs(features: pd.DataFrame, orders: pd.DataFrame | None = None) -> pd.DataFrame:
    """x, t_x, T (days) and the mean value of the repeat orders per customer of
    gold.customer_rfm_features. `orders`: the counted orders of gold.fct_orders (customer_id,
    order_id, ordered_at, revenue); without it the mean of all orders (monetary / frequency)
    stands in for the repeat mean."""
    frame = features.sort_values("customer_id", kind="mergesort").reset_index(drop=True)
    x = frame["frequency"].to_numpy().astype("float64") - 1.0
    if np.any(x < 0):
        raise PipelineError("gold.customer_rfm_features has a customer with frequency < 1")
    t_x = _days(frame["last_order_date"], frame["first_order_date"])
    T = _days(frame["as_of_date"], frame["first_order_date"])
    if np.any(t_x < 0) or np.any(t_x > T):
        raise PipelineError("gold.customer_rfm_features has first_order_date after last_order_date or as_of_date")
    # Several orders on one day: BG/NBD counts them all, but t_x = 0 with x > 0 is only valid when
    # they are all on the first day, which the likelihood handles (the last order at time 0+).
    monetary = pd.to_numeric(frame["monetary"].astype("object")).astype("float64").to_numpy()
    if orders is None:
        repeat_mean = np.where(x > 0, monetary / np.maximum(x + 1.0, 1.0), np.nan)
    else:
        ordered = orders.assign(customer_id=orders["customer_id"].astype(str)).sort_values(
            ["customer_id", "ordered_at", "order_id"], kind="mergesort")
        repeats = ordered[ordered.duplicated("customer_id", keep="first")]
        revenue = pd.to_numeric(repeats["revenue"].astype("object")).astype("float64")
        means = revenue.groupby(repeats["customer_id"]).mean()
        repeat_mean = means.reindex(frame["customer_id"].astype(str)).to_numpy()
        repeat_mean = np.where(x > 0, repeat_mean, np.nan)
    repeat_mean = np.where(np.isnan(repeat_mean), np.nan, np.clip(repeat_mean, 0.0, None))
    return pd.DataFrame({"customer_id": frame["customer_id"].astype(str), "x": x, "t_x": t_x, "T": T,
                         "repeat_mean": repeat_mean})


@dataclass
class CustomerValueModel:
    bgnbd: BetaGeoModel
    gamma_gamma: GammaGammaModel
    horizon_days: int
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, inputs: pd.DataFrame, horizon_days: int, *, as_of: date,
            segmentation_model_version: str | None = None) -> CustomerValueModel:
        try:
            bgnbd = BetaGeoModel().fit(inputs["x"].to_numpy(), inputs["t_x"].to_numpy(), inputs["T"].to_numpy())
            gamma_gamma = GammaGammaModel().fit(inputs["x"].to_numpy(), inputs["repeat_mean"].fillna(0.0).to_numpy())
        except (FitError, ValueError) as exc:
            raise PipelineError(f"customer value models cannot be fitted on gold.customer_rfm_features "
                                f"as of {as_of.isoformat()}: {exc}") from None
        return cls(bgnbd=bgnbd, gamma_gamma=gamma_gamma, horizon_days=horizon_days, fitted_on={
            "as_of_date": as_of.isoformat(), "customers": len(inputs),
            "segmentation_model_version": segmentation_model_version,
        })

    def params(self) -> dict[str, Any]:
        return {"format": MODEL_FORMAT, "horizon_days": self.horizon_days, "bgnbd": self.bgnbd.to_dict(),
                "gamma_gamma": self.gamma_gamma.to_dict(), "fitted_on": self.fitted_on}

    @property
    def model_version(self) -> str:
        canonical = json.dumps(self.params(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return "val-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, **self.params()}

    def predict(self, inputs: pd.DataFrame) -> pd.DataFrame:
        x, t_x, T = (inputs[c].to_numpy() for c in ("x", "t_x", "T"))
        p_alive = self.bgnbd.p_alive(x, t_x, T)
        expected = self.bgnbd.expected_orders(float(self.horizon_days), x, t_x, T)
        spend = self.gamma_gamma.expected_spend(x, inputs["repeat_mean"].to_numpy())
        clv = expected * spend
        for name, values in (("p_alive", p_alive), ("expected orders", expected), ("expected spend", spend),
                             ("predicted CLV", clv)):
            if not np.all(np.isfinite(values)):
                raise PipelineError(f"customer value: {name} is not finite for "
                                    f"{int(np.sum(~np.isfinite(values)))} customer(s); parameters {self.params()}")
        orders_col, clv_col = value_columns(self.horizon_days)
        return pd.DataFrame({
            "customer_id": inputs["customer_id"].to_numpy(),
            "repeat_orders": x.astype("int32"),
            "p_alive": np.clip(p_alive, 0.0, 1.0),
            orders_col: expected,
            "expected_order_value": spend,
            clv_col: clv,
        })

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
        pa.array([model_version] * n, pa.string()),
    ]
    return pa.Table.from_arrays(arrays, schema=schema)
