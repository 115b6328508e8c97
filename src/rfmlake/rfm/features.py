"""RFM features with a plain pandas groupby: the reference the benchmark and tests compare the dbt
mart (gold.customer_rfm_features) against. Same definitions as DESIGN.md section 5."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd

ORDER_COLUMNS: tuple[str, ...] = ("customer_id", "order_id", "order_date", "amount", "status")
FEATURE_COLUMNS: tuple[str, ...] = (
    "customer_id", "as_of_date", "first_order_date", "last_order_date", "recency_days",
    "frequency", "monetary", "avg_order_value", "reporting_currency",
)


def compute_rfm_features_pandas(
    orders: pd.DataFrame,
    as_of: date | None = None,
    *,
    counted_statuses: Iterable[str] = ("completed",),
    lookback_days: int | None = None,
    returns_policy: Literal["exclude", "net"] = "exclude",
    reporting_currency: str = "EUR",
) -> pd.DataFrame:
    """One row per customer with at least one counted order in the window, sorted by customer_id.

    orders: one row per order: customer_id, order_id, order_date (date or timestamp), amount (net
    order value, already in the reporting currency), status.

    - as_of: default the day after the latest order in the frame (any status).
    - window: order_date < as_of and, with lookback_days, order_date >= as_of - lookback_days.
    - counted orders: status in counted_statuses. With returns_policy "net", returned orders count
      too (the customer did buy; recency and frequency see them) but add 0 to monetary (sale and
      refund cancel); with "exclude" they are ignored like any other uncounted status.
    - frequency: distinct counted order_ids; monetary: sum of their amounts (rounded to cents);
      recency_days: whole days from the last counted order to as_of; avg_order_value =
      monetary / frequency rounded to cents.

    A frame repeating an order_id with different content is rejected (ValueError), since which row
    counts would be arbitrary; exact duplicate rows collapse to one.
    """
    missing = [c for c in ORDER_COLUMNS if c not in orders.columns]
    if missing:
        raise ValueError(f"orders frame lacks column(s) {missing}; needs {list(ORDER_COLUMNS)}")
    if returns_policy not in ("exclude", "net"):
        raise ValueError(f"returns_policy must be 'exclude' or 'net', got {returns_policy!r}")
    frame = orders.loc[:, list(ORDER_COLUMNS)].drop_duplicates()
    for column in ("customer_id", "order_id", "order_date", "amount", "status"):
        if frame[column].isna().any():
            raise ValueError(f"orders frame has missing {column} in {int(frame[column].isna().sum())} row(s)")
    repeated = frame["order_id"].duplicated(keep=False)
    if repeated.any():
        example = frame.loc[repeated, "order_id"].iloc[0]
        raise ValueError(f"order_id {example!r} appears with different content; deduplicate orders first")

    order_day = _to_day(frame["order_date"])
    if as_of is None:
        if frame.empty:
            raise ValueError("cannot default as_of: the orders frame is empty")
        as_of = (order_day.max() + pd.Timedelta(days=1)).date()
    as_of_ts = pd.Timestamp(as_of)

    in_window = order_day < as_of_ts
    if lookback_days is not None:
        in_window &= order_day >= as_of_ts - pd.Timedelta(days=lookback_days)
    statuses = set(counted_statuses)
    counted = frame["status"].isin(statuses)
    revenue = frame["amount"].astype("float64").where(counted, 0.0)
    if returns_policy == "net":
        counted |= frame["status"].eq("returned")

    kept = pd.DataFrame({
        "customer_id": frame["customer_id"].astype(str),
        "order_id": frame["order_id"],
        "order_day": order_day,
        "revenue": revenue,
    })[in_window & counted]

    grouped = kept.groupby("customer_id", sort=True)
    result = pd.DataFrame({
        "first_order_date": grouped["order_day"].min(),
        "last_order_date": grouped["order_day"].max(),
        "frequency": grouped["order_id"].nunique().astype("int32"),
        "monetary": grouped["revenue"].sum().round(2),
    }).reset_index()
    result["recency_days"] = (as_of_ts - result["last_order_date"]).dt.days.astype("int32")
    result["avg_order_value"] = np.round(result["monetary"] / result["frequency"], 2)
    result["as_of_date"] = as_of
    result["first_order_date"] = result["first_order_date"].dt.date
    result["last_order_date"] = result["last_order_date"].dt.date
    result["reporting_currency"] = reporting_currency
    return result.loc[:, list(FEATURE_COLUMNS)].reset_index(drop=True)


def _to_day(values: pd.Series) -> pd.Series:
    """Calendar day of each order; an offset-aware timestamp is taken in UTC (DESIGN.md section 3)."""
    stamps = pd.to_datetime(values, utc=True, format="ISO8601")
    return stamps.dt.tz_localize(None).dt.normalize()
