"""compute_rfm_features_pandas against a hand-computed fixture."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from rfmlake.rfm.features import FEATURE_COLUMNS, compute_rfm_features_pandas

ORDERS = pd.DataFrame(
    [
        ("C1", "o1", "2024-01-01", 100.00, "completed"),
        ("C1", "o2", "2024-03-01", 50.50, "completed"),
        ("C1", "o3", "2024-03-15", 999.00, "cancelled"),
        ("C2", "o4", "2024-02-10", 80.00, "returned"),
        ("C2", "o5", "2024-02-01", 20.00, "completed"),
        ("C3", "o6", "2024-03-20", 30.00, "pending"),
        ("C4", "o7", "2024-03-31T23:30:00+00:00", 10.00, "completed"),
        ("C4", "o7", "2024-03-31T23:30:00+00:00", 10.00, "completed"),  # exact duplicate row
    ],
    columns=["customer_id", "order_id", "order_date", "amount", "status"],
)


def by_customer(result: pd.DataFrame) -> dict[str, dict]:
    return result.set_index("customer_id").to_dict(orient="index")


def test_default_window_excludes_cancelled_returned_and_pending():
    result = compute_rfm_features_pandas(ORDERS)
    assert list(result.columns) == list(FEATURE_COLUMNS)
    assert result["customer_id"].tolist() == ["C1", "C2", "C4"]  # C3 has no counted order
    rows = by_customer(result)
    assert rows["C1"] == {
        "as_of_date": date(2024, 4, 1), "first_order_date": date(2024, 1, 1),
        "last_order_date": date(2024, 3, 1), "recency_days": 31, "frequency": 2,
        "monetary": 150.5, "avg_order_value": 75.25, "reporting_currency": "EUR",
    }
    assert (rows["C2"]["recency_days"], rows["C2"]["frequency"], rows["C2"]["monetary"]) == (60, 1, 20.0)
    assert (rows["C4"]["recency_days"], rows["C4"]["frequency"], rows["C4"]["monetary"]) == (1, 1, 10.0)


def test_net_returns_count_the_order_but_not_its_revenue():
    rows = by_customer(compute_rfm_features_pandas(ORDERS, returns_policy="net"))
    c2 = rows["C2"]
    assert (c2["last_order_date"], c2["recency_days"], c2["frequency"], c2["monetary"], c2["avg_order_value"]) \
        == (date(2024, 2, 10), 51, 2, 20.0, 10.0)


def test_lookback_and_explicit_as_of():
    rows = by_customer(compute_rfm_features_pandas(ORDERS, as_of=date(2024, 4, 1), lookback_days=40))
    assert sorted(rows) == ["C1", "C4"]  # C2's only completed order (Feb 1) is before Feb 21
    assert (rows["C1"]["first_order_date"], rows["C1"]["frequency"], rows["C1"]["monetary"]) \
        == (date(2024, 3, 1), 1, 50.5)
    # Orders on or after as_of are in the future of the run and do not count.
    early = by_customer(compute_rfm_features_pandas(ORDERS, as_of=date(2024, 3, 1)))
    assert early["C1"]["frequency"] == 1 and early["C1"]["recency_days"] == 60
    assert "C4" not in early


def test_conflicting_duplicate_orders_and_missing_columns_are_rejected():
    conflict = pd.concat([ORDERS, ORDERS.iloc[[0]].assign(amount=1.0)])
    with pytest.raises(ValueError, match="order_id 'o1'"):
        compute_rfm_features_pandas(conflict)
    with pytest.raises(ValueError, match="status"):
        compute_rfm_features_pandas(ORDERS.drop(columns="status"))
