"""Draw customers from BG/NBD and Gamma-Gamma with known parameters: the ground truth for the
parameter-recovery and holdout tests and the value benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd


def simulate_bgnbd_orders(
    n_customers: int,
    r: float, alpha: float, a: float, b: float,
    observation_days: np.ndarray | float,
    *,
    seed: int,
    p: float | None = None, q: float | None = None, v: float | None = None,
) -> pd.DataFrame:
    """One row per order: customer_id, day (float days since the customer's first order, 0 for
    the first), amount, and the customer's observation length `observation_days`.

    Each customer buys at rate lambda ~ Gamma(r, rate alpha) and after each repeat order drops out
    with probability p ~ Beta(a, b). With p, q, v given, order amounts are Gamma(p, rate nu) with
    nu ~ Gamma(q, rate v) per customer; otherwise 1.0."""
    rng = np.random.default_rng(seed)
    length = np.broadcast_to(np.asarray(observation_days, dtype="float64"), (n_customers,)).copy()
    lam = rng.gamma(r, 1.0 / alpha, n_customers)
    drop = rng.beta(a, b, n_customers)
    nu = rng.gamma(q, 1.0 / v, n_customers) if q is not None and v is not None else None

    customers = [np.arange(n_customers)]
    days = [np.zeros(n_customers)]
    now = np.zeros(n_customers)
    active = np.arange(n_customers)
    while len(active):
        now[active] += rng.exponential(1.0, len(active)) / lam[active]
        active = active[now[active] <= length[active]]
        customers.append(active.copy())
        days.append(now[active].copy())
        survives = rng.random(len(active)) >= drop[active]
        active = active[survives]
    customer = np.concatenate(customers)
    day = np.concatenate(days)
    amount = rng.gamma(p, 1.0 / nu[customer]) if nu is not None and p is not None else np.ones(len(customer))
    frame = pd.DataFrame({"customer_id": customer, "day": day, "amount": amount,
                          "observation_days": length[customer]})
    return frame.sort_values(["customer_id", "day"], kind="mergesort").reset_index(drop=True)


def summarize_orders(orders: pd.DataFrame, end_day: np.ndarray | float | None = None) -> pd.DataFrame:
    """Per customer (orders of `simulate_bgnbd_orders`, optionally cut at `end_day` per customer or
    for all): x, t_x, T and the mean value of the repeat orders (NaN when x = 0)."""
    frame = orders
    n = int(frame["customer_id"].max()) + 1
    if end_day is None:
        T = frame.groupby("customer_id")["observation_days"].first().reindex(range(n)).to_numpy()
    else:
        T = np.broadcast_to(np.asarray(end_day, dtype="float64"), (n,)).copy()
        frame = frame[frame["day"] <= T[frame["customer_id"].to_numpy()]]
    repeat = frame[frame["day"] > 0]
    grouped = repeat.groupby("customer_id")
    x = grouped.size().reindex(range(n), fill_value=0).to_numpy().astype("float64")
    t_x = grouped["day"].max().reindex(range(n), fill_value=0.0).to_numpy()
    mean = grouped["amount"].mean().reindex(range(n)).to_numpy()
    return pd.DataFrame({"customer_id": np.arange(n), "x": x, "t_x": t_x, "T": T, "repeat_mean": mean})
