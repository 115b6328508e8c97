"""rfmlake.lake.values: the column-wise conversion gives exactly the values of the per-value one,
which the profile documents and the activation fingerprints (a change means a resend) depend on."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from rfmlake.activation.audience import _batch_rows, member_from_row
from rfmlake.activation.model import MEMBER_ATTRIBUTES
from rfmlake.lake.values import jsonable, jsonable_column

COLUMNS = [
    pa.array([Decimal("12.30"), None, Decimal("0.07"), Decimal("-5")], pa.decimal128(18, 2)),
    pa.array([date(2026, 1, 2), None, date(1999, 12, 31), date(2026, 11, 4)]),
    pa.array([datetime(2026, 1, 2, 3, 4, 5, 600), None, datetime(2026, 1, 2), datetime(2026, 1, 2, 23, 59)],
             pa.timestamp("us")),
    pa.array([datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None, None, datetime(2026, 6, 1, tzinfo=UTC)],
             pa.timestamp("us", tz="UTC")),
    pa.array([1, None, -3, 2**40], pa.int64()),
    pa.array([1.5, None, float("inf"), -0.0]),
    pa.array(["a", None, "é\n", ""]),
    pa.array([True, None, False, True]),
    pa.array([[1], None, [], [2, 3]]),
]


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: str(c.type))
def test_column_values_are_the_per_value_conversion(column: pa.Array) -> None:
    expected = [jsonable(v) for v in column.to_pylist()]
    assert jsonable_column(column) == expected
    assert jsonable_column(pa.chunked_array([column[:2], column[2:]])) == expected
    assert all(isinstance(v, str | int | float | bool | type(None)) for v in expected)


def test_decimal_dates_become_float_and_iso_text() -> None:
    assert jsonable(Decimal("12.30")) == 12.3
    assert jsonable(date(2026, 1, 2)) == "2026-01-02"
    assert jsonable(datetime(2026, 1, 2, 3, 4, tzinfo=UTC)) == "2026-01-02T03:04:00+00:00"


def test_audience_rows_fingerprint_as_the_rows_of_to_pylist() -> None:
    """The activation stage builds its rows column by column: every member, skip reason and
    fingerprint is the one the plain rows give (an unchanged member is never sent again)."""
    n = 6
    data = {
        "customer_id": [f"c{i}" for i in range(n)],
        "rfm_segment": ["Champions", "At Risk", None, "Lost", "Champions", "New"],
        "segment": ["Champions", "At Risk", "Saved", "Lost", "Champions", "New"],
        "cluster_label": ["high", None, "low", "low", "high", "mid"],
        "rfm_cell": ["555", "211", None, "111", "545", "511"],
        "r_score": [5, 2, None, 1, 5, 5], "f_score": [5, 1, None, 1, 4, 1], "m_score": [5, 1, None, 1, 5, 1],
        "last_order_date": [date(2026, 11, 1), date(2025, 1, 1), None, date(2024, 5, 5), date(2026, 10, 30),
                            date(2026, 11, 3)],
        "frequency": [12, 1, None, 1, 7, 1],
        "monetary": [Decimal("1234.50"), Decimal("9.99"), None, Decimal("0.00"), Decimal("300.10"),
                     Decimal("45.00")],
        "as_of_date": [date(2026, 11, 4)] * n,
        "in_crm": [True, True, True, False, True, True],
        "marketing_opt_in": [True, True, None, True, False, True],
        "email": [" A@Example.COM ", "b@example.com", None, "d@example.com", None, "not-an-email"],
        "phone": ["+44 20 7946 0958", None, None, None, None, "0044 (20) 7946-0000"],
    }
    fields = {"monetary": pa.decimal128(18, 2)}
    batch = pa.RecordBatch.from_arrays([pa.array(v, fields.get(k)) for k, v in data.items()], names=list(data))
    assert set(MEMBER_ATTRIBUTES) <= set(data)
    for channel in ("email", "phone", "any"):
        made = [member_from_row(row, channel) for row in _batch_rows(batch)]
        plain = [member_from_row(row, channel) for row in batch.to_pylist()]
        assert made == plain
        assert [m.fingerprint(channel) for m, _ in made if m] == [m.fingerprint(channel) for m, _ in plain if m]
        assert any(m is not None for m, _ in made) and any(m is None for m, _ in made)
