"""The suites compiled to SQL: every shipped check compiles, a check that cannot be stated in SQL
is refused when the suite is compiled, and row scopes render as the filters they say."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from rfmlake.quality import Check, Derived, RowScope, Severity, TableSuite, gold_suites, silver_suites
from rfmlake.quality.sql import UnsupportedCheckError, compile_check, compile_suite, literal
from rfmlake.quality.suites import QualityContext

CTX = QualityContext(run_at=datetime(2024, 6, 1, 12, tzinfo=UTC), known_currencies=frozenset({"EUR"}),
                     segment_names=("Champions",))


def test_every_shipped_check_compiles_and_table_level_checks_ignore_the_scope() -> None:
    for suite in (*silver_suites(CTX), *gold_suites(CTX)):
        for item in compile_suite(suite):
            table_level = item.check.expectation in (
                "expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
                "expect_table_row_count_to_be_between", "expect_column_unique_value_count_to_be_between")
            referential = any(d.requires for c in item.check.columns if (d := suite.derived_column(c)))
            assert item.whole_table == (table_level or referential), (suite.qualified_name, item.check)
    items = next(s for s in silver_suites(CTX) if s.table == "order_items")
    known = next(i for i in compile_suite(items) if i.check.columns == ("_order_known",))
    assert known.whole_table and known.shape == "row"  # every line's order must exist, not only new lines


def test_a_check_without_a_sql_form_is_refused_naming_it() -> None:
    suite = TableSuite("silver", "orders", (Check("expect_column_values_to_be_dateutil_parseable", {"column": "x"},
                                                  Severity.WARNING, "x parses"),))
    with pytest.raises(UnsupportedCheckError, match=r"silver\.orders: expect_column_values_to_be_dateutil_parseable "
                                                    r"has no SQL form here; supported: expect_column_pair"):
        compile_suite(suite)
    mostly = Check("expect_column_values_to_not_be_null", {"column": "x", "mostly": 0.9}, Severity.WARNING, "x")
    with pytest.raises(UnsupportedCheckError, match="does not take mostly"):
        compile_check(suite, mostly)


def test_checks_read_as_great_expectations_defines_them() -> None:
    suite = TableSuite("silver", "t", (), derived=(Derived("_ok", "a IN (SELECT a FROM silver.u)", ("a",),
                                                           requires=("silver.u",)),))

    def unexpected(expectation: str, **kwargs: object) -> str:
        return compile_check(suite, Check(expectation, kwargs, Severity.WARNING, "")).unexpected_sql

    assert unexpected("expect_column_values_to_be_between", column="q", min_value=0, strict_min=True) == (
        '"q" IS NOT NULL AND NOT ("q" > 0)')
    assert unexpected("expect_column_values_to_be_in_set", column="s", value_set=["a", "it's"]) == (
        "\"s\" IS NOT NULL AND \"s\" NOT IN ('a', 'it''s')")
    assert unexpected("expect_column_values_to_match_regex", column="s", regex="^x$") == (
        "\"s\" IS NOT NULL AND NOT regexp_matches(CAST(\"s\" AS VARCHAR), '^x$')")
    referential = compile_check(suite, Check("expect_column_values_to_be_in_set",
                                             {"column": "_ok", "value_set": [True]}, Severity.WARNING, ""))
    assert referential.whole_table


def test_literals() -> None:
    assert [literal(v) for v in (True, 3, 0.5, Decimal("1.10"), "o'k", date(2024, 5, 1),
                                 datetime(2024, 5, 1, 12, 30), datetime(2024, 5, 1, 12, 30, tzinfo=UTC))] == [
        "TRUE", "3", "0.5", "1.10", "'o''k'", "DATE '2024-05-01'", "TIMESTAMP '2024-05-01 12:30:00'",
        "TIMESTAMPTZ '2024-05-01 12:30:00+00:00'"]
    with pytest.raises(UnsupportedCheckError, match="has no SQL literal"):
        literal(float("nan"))
    with pytest.raises(UnsupportedCheckError, match=r"\[1\] \(list\) has no SQL literal"):
        literal([1])


def test_row_scope_sql() -> None:
    assert RowScope.of_files(["b.csv", "a'.csv"]).sql() == "_source_file IN ('a''.csv', 'b.csv')"
    assert RowScope.of_files([]).sql() == "FALSE"
    both = RowScope(source_files=frozenset({"a.csv"}), predicate="_load_date >= DATE '2024-05-01'")
    assert both.sql() == "_source_file IN ('a.csv') AND (_load_date >= DATE '2024-05-01')"
    assert RowScope(predicate="x > 1").columns == ()
    with pytest.raises(ValueError, match="predicate is blank"):
        RowScope(predicate="  ")
    with pytest.raises(ValueError, match="not file names: 3"):
        RowScope(source_files=frozenset({"a", 3}))  # type: ignore[arg-type]


def test_duckdb_memory_bound_is_fixed_and_half_a_lambda() -> None:
    from rfmlake.quality.runner import DEFAULT_MEMORY_LIMIT, default_memory_limit

    assert default_memory_limit({}) == DEFAULT_MEMORY_LIMIT == "1GB"
    assert default_memory_limit({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024"}) == "512MB"
    assert default_memory_limit({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"}) == "128MB"
