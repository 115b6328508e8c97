"""Calibration vs holdout: fit BG/NBD on orders before a cut-off, predict the repeat orders of the
period after it, and compare with what customers actually did, per calibration-frequency bucket
(the check of FHL 2005, figure 3). The rows go into the segmentation report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from rfmlake.value.bgnbd import BetaGeoModel

TOP_BUCKET = 6  # x >= 6 repeat orders in calibration share one bucket ("6+")


@dataclass(frozen=True)
class CalibrationBucket:
    bucket: str               # repeat orders in the calibration period: "0", "1", ..., "6+"
    customers: int
    predicted_mean: float     # mean predicted repeat purchases in the holdout period
    actual_mean: float        # mean actual purchases in the holdout period


@dataclass(frozen=True)
class HoldoutCheck:
    calibration_end_day: float
    holdout_days: float
    customers: int
    params: dict[str, float]
    buckets: list[CalibrationBucket]
    predicted_total: float
    actual_total: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def period_summary(orders: pd.DataFrame, end_day: float) -> pd.DataFrame:
    """x, t_x, T per customer from orders (customer_id, day) strictly before end_day; only customers
    whose first order is before end_day."""
    kept = orders.loc[orders["day"] < end_day, ["customer_id", "day"]]
    grouped = kept.groupby("customer_id")["day"]
    first = grouped.min()
    last = grouped.max()
    count = grouped.size()
    return pd.DataFrame({
        "x": (count - 1).astype("float64"),
        "t_x": (last - first).astype("float64"),
        "T": (end_day - first).astype("float64"),
    })


def holdout_check(orders: pd.DataFrame, calibration_end_day: float, holdout_days: float,
                  purchase_period: str = "order") -> HoldoutCheck:
    """orders: one row per order with customer_id and day (float days on any common origin).
    With purchase_period "day" a customer's orders on one (whole) day are one purchase, in the
    calibration period and in the holdout alike, as in the value model."""
    if holdout_days <= 0:
        raise ValueError("holdout_days must be > 0")
    if purchase_period == "day":
        orders = orders.assign(day=np.floor(orders["day"])).drop_duplicates(["customer_id", "day"])
    elif purchase_period != "order":
        raise ValueError(f"purchase_period must be 'day' or 'order', got {purchase_period!r}")
    calibration = period_summary(orders, calibration_end_day)
    model = BetaGeoModel().fit(calibration["x"].to_numpy(), calibration["t_x"].to_numpy(),
                               calibration["T"].to_numpy())
    in_holdout = orders[(orders["day"] >= calibration_end_day)
                        & (orders["day"] < calibration_end_day + holdout_days)]
    actual = in_holdout.groupby("customer_id").size().reindex(calibration.index, fill_value=0)
    predicted = model.expected_orders(holdout_days, calibration["x"].to_numpy(), calibration["t_x"].to_numpy(),
                                      calibration["T"].to_numpy())
    frame = pd.DataFrame({
        "bucket": np.minimum(calibration["x"].to_numpy(), TOP_BUCKET).astype(int),
        "predicted": predicted,
        "actual": actual.to_numpy().astype("float64"),
    })
    buckets = []
    for bucket, group in frame.groupby("bucket", sort=True):
        buckets.append(CalibrationBucket(
            bucket=f"{bucket}+" if bucket == TOP_BUCKET else str(bucket),
            customers=len(group),
            predicted_mean=round(float(group["predicted"].mean()), 4),
            actual_mean=round(float(group["actual"].mean()), 4),
        ))
    params = {k: v for k, v in model.to_dict().items() if isinstance(v, float)}
    return HoldoutCheck(
        calibration_end_day=float(calibration_end_day), holdout_days=float(holdout_days),
        customers=len(frame), params=params, buckets=buckets,
        predicted_total=round(float(frame["predicted"].sum()), 2), actual_total=float(frame["actual"].sum()),
    )
