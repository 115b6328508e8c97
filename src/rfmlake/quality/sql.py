"""The suites' checks as SQL, so DuckDB (or any engine with the same functions) evaluates them where
the data lies, in one scan per table, instead of pulling columns into pandas (docs/adr: quality
checks compiled to SQL).

Each `Check` names a great-expectations expectation; `compile_check` states what that expectation
means as SQL, with great-expectations' semantics: value checks ignore nulls; every copy of a
duplicated key is unexpected; pair and compound checks ignore rows where all their columns are
null; regular expressions search (as `re.search`), they do not have to match the whole value.
tests/functional/quality/test_sql_conformance.py holds the two to the same answers on the same rows.

A compiled check is one of four shapes:
- `row`: a boolean SQL expression, true for an unexpected row; counted with `count_if`.
- `duplicates`: the columns whose repeated values are unexpected; counted by a GROUP BY.
- `aggregate`: one SQL aggregate (a row count, a distinct count) compared with bounds.
- `schema`: the table's column names compared with the contract (no SQL).

`whole_table` marks what must hold for the whole table even when row checks are scoped to the rows
an incremental run changed (`RowScope`): uniqueness, row counts, distinct counts, schema, and row
checks whose derived column reads another table (a referential check).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from rfmlake.quality.suites import Check, TableSuite

Shape = Literal["row", "duplicates", "aggregate", "schema"]

# The keyword arguments each expectation takes here (beyond the column names); anything else is a
# mistake in a suite, reported when the suite is compiled rather than silently ignored.
_ALLOWED_KWARGS: dict[str, frozenset[str]] = {
    "expect_column_values_to_not_be_null": frozenset({"column"}),
    "expect_column_values_to_be_in_set": frozenset({"column", "value_set"}),
    "expect_column_values_to_be_between": frozenset({"column", "min_value", "max_value", "strict_min",
                                                     "strict_max"}),
    "expect_column_values_to_match_regex": frozenset({"column", "regex"}),
    "expect_column_values_to_not_match_regex": frozenset({"column", "regex"}),
    "expect_column_pair_values_a_to_be_greater_than_b": frozenset({"column_A", "column_B", "or_equal"}),
    "expect_column_values_to_be_unique": frozenset({"column"}),
    "expect_compound_columns_to_be_unique": frozenset({"column_list"}),
    "expect_column_unique_value_count_to_be_between": frozenset({"column", "min_value", "max_value"}),
    "expect_table_row_count_to_be_between": frozenset({"min_value", "max_value"}),
    "expect_table_columns_to_match_set": frozenset({"column_set", "exact_match"}),
}
SUPPORTED_EXPECTATIONS: tuple[str, ...] = tuple(sorted(_ALLOWED_KWARGS))


class UnsupportedCheckError(ValueError):
    """A suite declares a check this module cannot state as SQL (unknown expectation, unknown or
    ill-typed argument)."""


@dataclass(frozen=True)
class CompiledCheck:
    check: Check
    shape: Shape
    whole_table: bool
    unexpected_sql: str = ""              # row: true for an unexpected row
    columns: tuple[str, ...] = ()         # frame columns it reads (row values shown as examples)
    aggregate_sql: str = ""               # aggregate: the observed value
    min_value: Any = None                 # aggregate bounds (inclusive)
    max_value: Any = None

    def success_of(self, observed: Any) -> bool:
        """For aggregates: whether the observed value lies within the bounds."""
        if observed is None:
            return False
        if self.min_value is not None and observed < self.min_value:
            return False
        return not (self.max_value is not None and observed > self.max_value)


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a suite parameter; raises UnsupportedCheckError for other types."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedCheckError(f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        return f"{'TIMESTAMPTZ' if value.tzinfo else 'TIMESTAMP'} '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    raise UnsupportedCheckError(f"{value!r} ({type(value).__name__}) has no SQL literal")


def _bound_sql(column: str, kwargs: Mapping[str, Any]) -> str:
    """Unexpected for expect_column_values_to_be_between: a non-null value outside the range."""
    conditions: list[str] = []
    if kwargs.get("min_value") is not None:
        conditions.append(f"{column} {'>' if kwargs.get('strict_min') else '>='} {literal(kwargs['min_value'])}")
    if kwargs.get("max_value") is not None:
        conditions.append(f"{column} {'<' if kwargs.get('strict_max') else '<='} {literal(kwargs['max_value'])}")
    if not conditions:
        raise UnsupportedCheckError("expect_column_values_to_be_between needs min_value or max_value")
    return f"{column} IS NOT NULL AND NOT ({' AND '.join(conditions)})"


def compile_check(suite: TableSuite, check: Check) -> CompiledCheck:
    """The check as SQL over the suite's frame (table columns and derived columns by name)."""
    kind = check.expectation
    allowed = _ALLOWED_KWARGS.get(kind)
    if allowed is None:
        raise UnsupportedCheckError(
            f"{suite.qualified_name}: {kind} has no SQL form here; supported: {', '.join(SUPPORTED_EXPECTATIONS)}")
    unknown = sorted(set(check.kwargs) - allowed)
    if unknown:
        raise UnsupportedCheckError(f"{suite.qualified_name}: {kind} does not take {', '.join(unknown)} here")
    kwargs = check.kwargs
    # A derived column that reads another table is a referential check: it must hold for every row.
    referential = any(d.requires for name in check.columns if (d := suite.derived_column(name)) is not None)
    columns = check.columns
    column = quote(columns[0]) if columns else ""

    def row(unexpected: str) -> CompiledCheck:
        return CompiledCheck(check, "row", referential, unexpected_sql=unexpected, columns=columns)

    if kind == "expect_column_values_to_not_be_null":
        return row(f"{column} IS NULL")
    if kind == "expect_column_values_to_be_in_set":
        values = kwargs["value_set"]
        if isinstance(values, str | bytes) or not isinstance(values, Iterable):
            raise UnsupportedCheckError(f"{suite.qualified_name}: value_set of {columns[0]} must be a list")
        items = ", ".join(literal(v) for v in values)
        return row(f"{column} IS NOT NULL AND {column} NOT IN ({items})" if items else f"{column} IS NOT NULL")
    if kind == "expect_column_values_to_be_between":
        return row(_bound_sql(column, kwargs))
    if kind in ("expect_column_values_to_match_regex", "expect_column_values_to_not_match_regex"):
        matches = f"regexp_matches(CAST({column} AS VARCHAR), {literal(str(kwargs['regex']))})"
        negate = "NOT " if kind == "expect_column_values_to_match_regex" else ""
        return row(f"{column} IS NOT NULL AND {negate}{matches}")
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = quote(kwargs["column_A"]), quote(kwargs["column_B"])
        operator = ">=" if kwargs.get("or_equal") else ">"
        # great-expectations ignores rows where both are null; one null makes the row unexpected.
        return row(f"NOT ({a} IS NULL AND {b} IS NULL) AND NOT coalesce({a} {operator} {b}, FALSE)")
    if kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        return CompiledCheck(check, "duplicates", True, columns=columns)
    if kind == "expect_column_unique_value_count_to_be_between":
        return CompiledCheck(check, "aggregate", True, aggregate_sql=f"count(DISTINCT {column})", columns=columns,
                             min_value=kwargs.get("min_value"), max_value=kwargs.get("max_value"))
    if kind == "expect_table_row_count_to_be_between":
        return CompiledCheck(check, "aggregate", True, aggregate_sql="count(*)",
                             min_value=kwargs.get("min_value"), max_value=kwargs.get("max_value"))
    return CompiledCheck(check, "schema", True)  # expect_table_columns_to_match_set


def compile_suite(suite: TableSuite) -> tuple[CompiledCheck, ...]:
    """Every check of a suite compiled; raises UnsupportedCheckError naming the first that is not."""
    return tuple(compile_check(suite, check) for check in suite.checks)


def duplicate_groups_sql(frame_sql: str, columns: Collection[str]) -> str:
    """The groups of `columns` that occur more than once (rows where all of them are null are not
    a key and are ignored, as great-expectations does), with their row counts as `_n`."""
    names = ", ".join(quote(c) for c in columns)
    all_null = " AND ".join(f"{quote(c)} IS NULL" for c in columns)
    return (f"SELECT {names}, count(*) AS _n FROM ({frame_sql}) AS _frame WHERE NOT ({all_null}) "
            f"GROUP BY {names} HAVING count(*) > 1")


@dataclass(frozen=True)
class RowScope:
    """The rows of one table that row-level checks read in an incremental run: those whose
    `_source_file` is one of `source_files`, and (if given) that match `predicate`, a SQL boolean
    expression over the table's columns (for example on the partition column `_load_date`).

    Table-level checks ignore the scope and always read the whole table: row counts, key uniqueness,
    distinct-value counts, the schema, and checks that look into another table (every order line's
    order is in silver.orders). An empty `source_files` means no row of the table changed."""

    source_files: frozenset[str] | None = None
    predicate: str | None = None

    def __post_init__(self) -> None:
        if self.source_files is None and not self.predicate:
            raise ValueError("RowScope needs source_files, a predicate, or both")
        if self.source_files is not None:
            if isinstance(self.source_files, str):
                raise ValueError("RowScope.source_files is a collection of file names, not one string")
            files = frozenset(self.source_files)
            bad = sorted(repr(f) for f in files if not isinstance(f, str) or not f)
            if bad:
                raise ValueError(f"RowScope.source_files holds values that are not file names: {', '.join(bad)}")
            object.__setattr__(self, "source_files", files)
        if self.predicate is not None and not self.predicate.strip():
            raise ValueError("RowScope.predicate is blank; leave it out to scope by source_files only")

    @classmethod
    def of_files(cls, files: Iterable[str]) -> RowScope:
        return cls(source_files=frozenset(files))

    @property
    def columns(self) -> tuple[str, ...]:
        """Table columns the scope itself needs (checked for presence before it is used)."""
        return ("_source_file",) if self.source_files is not None else ()

    def sql(self) -> str:
        parts: list[str] = []
        if self.source_files is not None:
            files = sorted(self.source_files)
            parts.append(f"_source_file IN ({', '.join(literal(f) for f in files)})" if files else "FALSE")
        if self.predicate:
            parts.append(f"({self.predicate})")
        return " AND ".join(parts)

    def describe(self) -> str:
        parts: list[str] = []
        if self.source_files is not None:
            parts.append(f"{len(self.source_files)} changed source file(s)")
        if self.predicate:
            parts.append(f"rows where {self.predicate}")
        return ", ".join(parts)
