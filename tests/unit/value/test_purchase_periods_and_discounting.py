"""What one purchase is (a day with orders, or each order), the discounted margin CLV, the value
stage's minimum, and a fit at the search bound reported as a failed fit."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from rfmlake.value.calibration import holdout_check
from rfmlake.value.fitting import FitError
from rfmlake.value.model import CustomerValueModel, below_minimum, discounted_column, value_columns, value_inputs
from rfmlake.value.simulate import simulate_bgnbd_orders, summarize_orders

AS_OF = date(2024, 6, 1)


def features_and_orders(orders: list[tuple[str, str, date, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """orders: (customer_id, order_id, order_date, revenue) -> gold.customer_rfm_features-like rows
    and gold.fct_orders-like counted orders, as the value stage reads them."""
    frame = pd.DataFrame(orders, columns=["customer_id", "order_id", "order_date", "revenue"])
    frame["ordered_at"] = [datetime(d.year, d.month, d.day, 9) + timedelta(minutes=i)
                           for i, d in enumerate(frame["order_date"])]
    per = frame.groupby("customer_id").agg(first_order_date=("order_date", "min"),
                                           last_order_date=("order_date", "max"),
                                           frequency=("order_id", "nunique"), monetary=("revenue", "sum"))
    features = per.reset_index().assign(as_of_date=AS_OF)
    return features, frame


SAME_DAY = [
    # A: three orders on 2024-01-10 (one purchase worth 60), then one on 2024-03-01 (worth 40).
    ("A", "o1", date(2024, 1, 10), 10.0), ("A", "o2", date(2024, 1, 10), 20.0), ("A", "o3", date(2024, 1, 10), 30.0),
    ("A", "o4", date(2024, 3, 1), 40.0),
    # B: two orders on its first day and one later day with two orders (30 + 50 = 80).
    ("B", "o5", date(2024, 2, 1), 5.0), ("B", "o6", date(2024, 2, 1), 5.0),
    ("B", "o7", date(2024, 4, 1), 30.0), ("B", "o8", date(2024, 4, 1), 50.0),
    # C: two orders on one day only: one purchase, no repeat.
    ("C", "o9", date(2024, 5, 1), 12.0), ("C", "o10", date(2024, 5, 1), 13.0),
]


def test_orders_on_one_day_are_one_purchase_in_x_t_x_and_the_spend_mean():
    features, orders = features_and_orders(SAME_DAY)
    by_day = value_inputs(features, orders, "day").set_index("customer_id")
    assert by_day["x"].to_dict() == {"A": 1.0, "B": 1.0, "C": 0.0}
    assert by_day["t_x"].to_dict() == {"A": 51.0, "B": 60.0, "C": 0.0}
    assert by_day["T"].to_dict() == {"A": 143.0, "B": 121.0, "C": 31.0}
    assert by_day.loc["A", "repeat_mean"] == 40.0   # the later day, not the mean of o2, o3, o4
    assert by_day.loc["B", "repeat_mean"] == 80.0   # the repeat day's total, 30 + 50
    assert np.isnan(by_day.loc["C", "repeat_mean"])

    by_order = value_inputs(features, orders, "order").set_index("customer_id")
    assert by_order["x"].to_dict() == {"A": 3.0, "B": 3.0, "C": 1.0}
    assert by_order.loc["A", "repeat_mean"] == pytest.approx(30.0)  # o2, o3, o4
    assert by_order.loc["B", "repeat_mean"] == pytest.approx(85.0 / 3)
    assert by_order["t_x"].to_dict() == by_day["t_x"].to_dict()  # same first and last day either way


def test_without_orders_the_period_cannot_apply_and_orders_are_counted():
    features, _ = features_and_orders(SAME_DAY)
    inputs = value_inputs(features, None, "day").set_index("customer_id")
    assert inputs["x"].to_dict() == {"A": 3.0, "B": 3.0, "C": 1.0}
    with pytest.raises(ValueError, match="purchase_period must be one of"):
        value_inputs(features, None, "week")


def test_holdout_check_counts_days_when_the_period_is_day():
    n = 4000
    first_day = np.random.default_rng(1).uniform(0, 300, n)
    orders = simulate_bgnbd_orders(n, 0.6, 25.0, 2.5, 6.0, 600.0 - first_day, seed=3)
    orders["day"] = orders["day"] + first_day[orders["customer_id"].to_numpy()]
    doubled = pd.concat([orders, orders]).reset_index(drop=True)  # every order twice on its day
    by_day = holdout_check(doubled, 450.0, 150.0, purchase_period="day")
    one_per_day = orders.assign(day=np.floor(orders["day"])).drop_duplicates(["customer_id", "day"])
    assert len(one_per_day) < len(orders)  # the simulation has same-day orders too
    assert by_day.to_dict() == holdout_check(one_per_day, 450.0, 150.0, purchase_period="order").to_dict()
    by_order = holdout_check(doubled, 450.0, 150.0, purchase_period="order")
    assert by_order.actual_total > by_day.actual_total


def fitted_model(horizon: int = 365, **money: float) -> tuple[CustomerValueModel, pd.DataFrame]:
    orders = simulate_bgnbd_orders(3000, 0.8, 40.0, 1.2, 5.0, 500.0, seed=9, p=5.0, q=4.0, v=20.0)
    inputs = summarize_orders(orders).assign(customer_id=lambda f: f["customer_id"].astype(str))
    return CustomerValueModel.fit(inputs, horizon, as_of=AS_OF, **money), inputs


def test_discounted_margin_clv_is_the_clv_at_margin_one_and_no_discount():
    model, inputs = fitted_model(margin=1.0, annual_discount_rate=0.0)
    predicted = model.predict(inputs)
    _, clv = value_columns(365)
    np.testing.assert_allclose(predicted[discounted_column(365)], predicted[clv], rtol=1e-9, atol=1e-9)


def test_discounting_and_margin_lower_the_clv_as_they_should():
    plain, inputs = fitted_model(annual_discount_rate=0.0)
    clv = plain.predict(inputs)[discounted_column(365)].to_numpy()
    discounted, _ = fitted_model(annual_discount_rate=0.10)
    at_ten = discounted.predict(inputs)[discounted_column(365)].to_numpy()
    buyers = clv > 0.01
    ratio = at_ten[buyers] / clv[buyers]
    # Purchases spread over the year are discounted by between 1 and 1/1.1 (the year's end).
    assert np.all(ratio < 1.0) and np.all(ratio > 1 / 1.1)
    half_margin, _ = fitted_model(margin=0.4, annual_discount_rate=0.10)
    np.testing.assert_allclose(half_margin.predict(inputs)[discounted_column(365)], 0.4 * at_ten, rtol=1e-9)
    assert half_margin.model_version != discounted.model_version  # the money terms are part of the model


def test_the_minimum_names_what_is_missing():
    features, orders = features_and_orders(SAME_DAY)
    inputs = value_inputs(features, orders, "day")
    reason = below_minimum(inputs, min_customers=50, min_repeat_customers=20)
    assert reason is not None
    assert reason.startswith("3 customer(s), 2 with repeat purchases, 2 distinct positive repeat spend value(s); "
                             "at least 50 customers, 20 with repeat purchases")
    _, simulated = fitted_model()
    assert below_minimum(simulated, min_customers=50, min_repeat_customers=20) is None
    same_spend = simulated.assign(repeat_mean=np.where(simulated["x"] > 0, 25.0, np.nan))
    assert "1 distinct positive repeat spend" in below_minimum(same_spend, 50, 20)


def test_a_fit_at_the_search_bound_is_a_failed_fit_with_its_diagnostics():
    # Issue 21's young shop: two customers with two orders each (lowered minimums let it reach the fit).
    features, orders = features_and_orders([
        ("A", "o1", date(2024, 5, 1), 20.0), ("A", "o2", date(2024, 5, 20), 25.0),
        ("B", "o3", date(2024, 5, 3), 30.0), ("B", "o4", date(2024, 5, 25), 50.0),
    ])
    inputs = value_inputs(features, orders, "day")
    assert below_minimum(inputs, min_customers=2, min_repeat_customers=2) is None
    with pytest.raises(FitError, match="search bound") as failed:
        CustomerValueModel.fit(inputs, 365, as_of=AS_OF)
    assert {"bgnbd", "gamma_gamma"} <= set(failed.value.diagnostics)
    assert failed.value.diagnostics["bgnbd"]["fit"]["at_bound"] or failed.value.diagnostics["gamma_gamma"]["fit"][
        "at_bound"]
