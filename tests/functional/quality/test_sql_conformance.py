"""The SQL runner gives great-expectations' answers: every expectation type the suites use, run by
GX on a pandas frame and by DuckDB on the same rows in the lake, on rows chosen to tell apart the
readings one could get wrong (nulls, every copy of a duplicate, all-null compound keys, one-null
pairs, strict bounds, a regular expression that matches inside a value but not all of it)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.quality import Check, Derived, Severity, TableSuite
from rfmlake.quality.gx import GxValidator
from rfmlake.quality.report import ExpectationOutcome
from rfmlake.quality.runner import TableValidation
from rfmlake.quality.sql import SUPPORTED_EXPECTATIONS
from rfmlake.quality.suites import EMAIL_IN_TEXT_REGEX, HEX_TOKEN_REGEX

W = Severity.WARNING


def _check(expectation: str, pii: bool = False, **kwargs: Any) -> Check:
    return Check(expectation, kwargs, W, f"{expectation} {kwargs}", pii=pii)


CHECKS = (
    _check("expect_table_row_count_to_be_between", min_value=1),
    _check("expect_table_row_count_to_be_between", min_value=1, max_value=5),
    _check("expect_column_values_to_not_be_null", column="s"),
    _check("expect_column_values_to_not_be_null", column="k"),
    _check("expect_column_values_to_be_in_set", column="s", value_set=["a", "b"]),
    _check("expect_column_values_to_be_in_set", column="flag", value_set=[True]),
    _check("expect_column_values_to_be_in_set", column="_has_s", value_set=[True]),
    _check("expect_column_values_to_be_between", column="n", min_value=0),
    _check("expect_column_values_to_be_between", column="n", min_value=0, strict_min=True),
    _check("expect_column_values_to_be_between", column="n", min_value=1, max_value=3),
    _check("expect_column_values_to_be_between", column="x", max_value=1.5),
    _check("expect_column_values_to_be_between", column="amount", min_value=0),
    _check("expect_column_values_to_match_regex", column="token", regex=HEX_TOKEN_REGEX, pii=True),
    _check("expect_column_values_to_match_regex", column="cc", regex=r"^[A-Z]{2}$"),
    _check("expect_column_values_to_not_match_regex", column="url", regex=EMAIL_IN_TEXT_REGEX, pii=True),
    _check("expect_column_values_to_not_match_regex", column="url", regex=r"cart"),
    _check("expect_column_pair_values_a_to_be_greater_than_b", column_A="last", column_B="first", or_equal=True),
    _check("expect_column_pair_values_a_to_be_greater_than_b", column_A="last", column_B="first", or_equal=False),
    _check("expect_column_values_to_be_unique", column="s"),
    _check("expect_column_values_to_be_unique", column="k"),
    _check("expect_compound_columns_to_be_unique", column_list=["c1", "c2"]),
    _check("expect_column_unique_value_count_to_be_between", column="s", max_value=1),
    _check("expect_column_unique_value_count_to_be_between", column="cc", min_value=1, max_value=3),
)
SUITE = TableSuite("silver", "conformance", CHECKS, key=("k",),
                   derived=(Derived("_has_s", "s IS NOT NULL", sources=("s",)),))

D = date
ROWS: dict[str, Any] = {
    "k": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
    "s": ["a", "a", None, "b", "zz", "zz", None],
    "flag": [True, False, None, True, True, None, False],
    "n": pa.array([0, 1, -1, None, 3, 4, 2], pa.int64()),
    "x": [1.5, 1.5000001, None, -2.0, 0.0, 1.0, float("nan")],
    "amount": pa.array([Decimal("0.00"), Decimal("-0.01"), None, Decimal("5.10"), Decimal("1"), Decimal("2"),
                        Decimal("3")], pa.decimal128(18, 2)),
    "token": ["0" * 64, "ann@example.com", None, "f" * 64, "F" * 64, "0" * 63, "a" * 64 + "b"],
    "cc": ["SE", "se", None, "DE", "SEX", "X SE", "DE"],
    "url": ["/cart", "/p?e=ann@example.com", None, "/home", "a@b.co", "/p/1", "mailto:x@y"],
    "first": pa.array([D(2024, 1, 1), D(2024, 1, 2), None, D(2024, 1, 1), None, D(2024, 1, 3), D(2024, 1, 3)]),
    "last": pa.array([D(2024, 1, 2), D(2024, 1, 1), None, None, D(2024, 1, 1), D(2024, 1, 3), D(2024, 1, 4)]),
    "c1": ["o1", "o1", None, None, "o2", "o2", None],
    "c2": pa.array([1, 1, None, None, 1, 2, 7], pa.int32()),
}


def _same_value(value: Any) -> str:
    """An example as text, blind to how DuckDB hands values to pandas for GX: DECIMAL as float, DATE
    as a midnight timestamp (the runner keeps decimals and dates)."""
    if isinstance(value, list):
        return "[" + ", ".join(_same_value(v) for v in value) + "]"
    return re.sub(r"^(\d{4}-\d{2}-\d{2})T00:00:00(\.0+)?$", r"\1", str(value))


def _compare(ours: ExpectationOutcome, theirs: ExpectationOutcome) -> None:
    context = (ours.expectation, ours.parameters, ours.columns)
    assert ours.success == theirs.success, context
    assert ours.element_count == theirs.element_count, context
    assert ours.unexpected_count == theirs.unexpected_count, context
    if theirs.unexpected_percent is None:
        assert ours.unexpected_percent is None, context
    else:
        assert ours.unexpected_percent == pytest.approx(theirs.unexpected_percent), context
    assert ours.observed_value == theirs.observed_value, context
    # GX lists examples in frame order, the SQL runner in key order; with under five each, the same set.
    assert set(map(_same_value, ours.unexpected_examples)) == set(map(_same_value, theirs.unexpected_examples)), context
    assert sorted(map(repr, ours.unexpected_rows)) == sorted(map(repr, theirs.unexpected_rows)), context


def _both(lake: Lake, columns: dict[str, Any]) -> tuple[list[ExpectationOutcome], list[ExpectationOutcome]]:
    lake.write_arrow("silver", "conformance", pa.table(columns))
    con = connect(lake, zones=("silver",))
    try:
        validation = TableValidation(con, lake, SUITE)
        ours = list(validation.run().expectations)
        frame = con.execute(validation.frame_sql(range(len(CHECKS)), scoped=False, read_out=True)).df()
    finally:
        con.close()
    theirs = GxValidator().validate(SUITE, frame, list(enumerate(CHECKS)))
    return ours, [theirs[i] for i in range(len(CHECKS))]


def test_the_suites_use_only_expectations_the_sql_runner_states() -> None:
    used = {c.expectation for c in CHECKS} | {"expect_table_columns_to_match_set"}
    assert used == set(SUPPORTED_EXPECTATIONS)


def test_sql_answers_equal_great_expectations_answers(lake: Lake) -> None:
    ours, theirs = _both(lake, ROWS)

    for mine, reference in zip(ours, theirs, strict=True):
        _compare(mine, reference)
    # The rows were chosen so that most checks fail: a comparison of passes only would prove little.
    assert sum(not o.success for o in ours) >= 17


def test_sql_answers_equal_great_expectations_answers_on_an_empty_table(lake: Lake) -> None:
    schema = pa.table(ROWS).schema
    ours, theirs = _both(lake, {name: pa.array([], schema.field(name).type) for name in ROWS})

    for mine, reference in zip(ours, theirs, strict=True):
        _compare(mine, reference)
    assert [o.observed_value for o in ours[:2]] == [0, 0] and not ours[0].success
