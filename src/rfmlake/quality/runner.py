"""Run a zone's suites as SQL in DuckDB, over the lake's catalog views (local Parquet, or s3:// through
httpfs): per table one scan computes every row check's unexpected count and the table's aggregates,
one GROUP BY per uniqueness check counts duplicated keys, and only a failed check reads a few example
rows. Nothing the size of a table is held in Python; DuckDB works within `memory_limit` and spills
to a temporary folder beyond it (docs/adr: quality checks compiled to SQL).

In an incremental run a caller may pass a `RowScope` per table: row checks then read only the rows
it selects, table-level checks (row counts, uniqueness, referential checks) still the whole table.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.duck import fetch
from rfmlake.quality.report import EXAMPLE_COUNT, QualityReport, TableOutcome, outcome_from_result
from rfmlake.quality.sql import CompiledCheck, RowScope, compile_suite, duplicate_groups_sql, literal, quote
from rfmlake.quality.suites import Check, QualityContext, TableSuite, suites_for

if TYPE_CHECKING:
    from rfmlake.quality.report import ExpectationOutcome

log = logging.getLogger(__name__)

# What DuckDB may hold at once; beyond it joins and aggregations spill to disk. A fixed bound, so the
# stage's memory does not grow with the tables.
DEFAULT_MEMORY_LIMIT = "1GB"


def default_memory_limit(env: Mapping[str, str] | None = None) -> str:
    """DEFAULT_MEMORY_LIMIT, or in a Lambda half of the function's memory (the interpreter, pyarrow
    and DuckDB's own code take most of the rest)."""
    env = os.environ if env is None else env
    lambda_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if lambda_mb.isdigit():
        return f"{max(128, int(lambda_mb) // 2)}MB"
    return DEFAULT_MEMORY_LIMIT


def run_quality(lake: Lake, zone: str, *, context: QualityContext, scope: Mapping[str, RowScope] | None = None,
                memory_limit: str | None = None) -> QualityReport:
    """Validate every table of `zone` that has a suite. Tables absent from the lake are reported as
    skipped, or as missing (a critical failure) when their suite is required. Never raises for bad
    data: call `raise_for_critical()` on the report to stop a run.

    `scope` maps qualified table names ("silver.orders") to the rows an incremental run changed:
    row checks of those tables read only those rows; tables not in it are checked whole. Raises
    ValueError for a scope naming a table without a suite, or one the table cannot be filtered by."""
    suites = suites_for(zone, context)
    compiled = {suite.qualified_name: compile_suite(suite) for suite in suites}
    scope = dict(scope or {})
    unknown = sorted(set(scope) - set(compiled))
    if unknown:
        raise ValueError(f"row scope for {', '.join(unknown)}: no quality suite in the {zone} zone has that "
                         f"table; tables: {', '.join(compiled)}")
    started = time.perf_counter()
    present = [suite for suite in suites if lake.current(suite.zone, suite.table) is not None]
    outcomes: dict[str, TableOutcome] = {s.qualified_name: _absent(s) for s in suites if s not in present}
    if present:
        derived = [d for s in present for d in (*s.derived, *(d for c in s.checks for d in c.derived))]
        zones = tuple(sorted({zone, *(r.split(".", 1)[0] for d in derived for r in d.requires)}))
        spill = tempfile.mkdtemp(prefix="rfmlake-quality-")
        con = connect(lake, zones=zones)
        try:
            con.execute(f"SET memory_limit = {literal(memory_limit or default_memory_limit())}")
            con.execute(f"SET temp_directory = {literal(spill)}")
            con.execute("SET preserve_insertion_order = false")
            for suite in present:
                outcomes[suite.qualified_name] = TableValidation(
                    con, lake, suite, scope.get(suite.qualified_name), compiled[suite.qualified_name]).run()
        finally:
            con.close()
            shutil.rmtree(spill, ignore_errors=True)
    report = QualityReport(zone, context.run_at, tuple(outcomes[s.qualified_name] for s in suites),
                           time.perf_counter() - started)
    log.info("%s", report.summary())
    return report


def _absent(suite: TableSuite) -> TableOutcome:
    if suite.required:
        return TableOutcome(suite.qualified_name, "missing", required=True,
                            reason="required table is not in the lake")
    return TableOutcome(suite.qualified_name, "skipped", reason="not in the lake")


@dataclass
class _Counts:
    rows: int
    values: dict[int, Any]  # check index -> unexpected count (row, duplicates) or observed value (aggregate)
    errors: dict[int, str]


class TableValidation:
    """One table's suite on a catalog connection (`connect(lake)`): its queries, and their results as
    a TableOutcome (`run()`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, lake: Lake, suite: TableSuite,
                 scope: RowScope | None = None, compiled: Sequence[CompiledCheck] | None = None) -> None:
        self.con, self.lake, self.suite, self.scope = con, lake, suite, scope
        self.compiled = tuple(compiled) if compiled is not None else compile_suite(suite)
        self.table_sql = f"{quote(suite.zone)}.{quote(suite.table)}"
        self.column_types: dict[str, str] = {
            name: str(type_) for name, type_, *_ in con.execute(f"DESCRIBE {self.table_sql}").fetchall()
        }
        self.key = [c for c in suite.key if c in self.column_types]
        # A float NaN is a missing value to great-expectations (pandas), but a number above all others
        # to SQL: the checks read NaN as null, so that `between` ignores it and `not_null` catches it.
        floats = [name for name, type_ in self.column_types.items() if type_ in ("DOUBLE", "FLOAT")]
        self.source_sql = self.table_sql
        if floats:
            replaced = ", ".join(f"CASE WHEN isnan({quote(c)}) THEN NULL ELSE {quote(c)} END AS {quote(c)}"
                                 for c in floats)
            self.source_sql = f"(SELECT * REPLACE ({replaced}) FROM {self.table_sql}) AS {quote(suite.table)}"
        if scope is not None:
            missing = [c for c in scope.columns if c not in self.column_types]
            if missing:
                raise ValueError(f"row scope for {suite.qualified_name}: column(s) {', '.join(missing)} not in the "
                                 "table, so it cannot be filtered by source file")

    def run(self) -> TableOutcome:
        results: dict[int, ExpectationOutcome] = {}
        runnable: list[int] = []
        for index, item in enumerate(self.compiled):
            reason = self.why_not_runnable(item.check)
            if reason:
                results[index] = outcome_from_result(self.suite, item.check, success=False, error=reason)
            elif item.shape == "schema":
                results[index] = self._schema(item.check)
            else:
                runnable.append(index)

        scoped = [i for i in runnable if self.scope is not None and not self.compiled[i].whole_table]
        whole = [i for i in runnable if i not in scoped and self.compiled[i].shape != "duplicates"]
        duplicates = [i for i in runnable if self.compiled[i].shape == "duplicates"]
        table = self._aggregate(whole, scoped=False)
        in_scope = self._aggregate(scoped, scoped=True) if self.scope is not None else table
        for index in duplicates:
            table.values[index], error = self._duplicate_count(index)
            if error:
                table.errors[index] = error

        for index in runnable:
            counts = in_scope if index in scoped else table
            results[index] = self._outcome(index, counts)
        expectations = [self._schema(self._schema_check())] if self.suite.expected_columns else []
        expectations.extend(results[i] for i in range(len(self.compiled)))
        scope_fields: dict[str, Any] = {}
        if self.scope is not None:
            scope_fields = {"scope": self.scope.describe(), "rows_in_scope": in_scope.rows}
        return TableOutcome(self.suite.qualified_name, "validated", required=self.suite.required,
                            row_count=table.rows, expectations=tuple(expectations), **scope_fields)

    # -- planning -------------------------------------------------------------------------------
    def why_not_runnable(self, check: Check) -> str:
        """Why a check cannot run on this table (a column it reads is absent, a table it needs is not
        in the lake), or "" if it can."""
        missing = [c for c in self.suite.source_columns(check) if c not in self.column_types]
        if missing:
            return f"column(s) {', '.join(missing)} not in {self.suite.qualified_name}"
        for name in check.columns:
            derived = self.suite.derived_column(name)
            for required in derived.requires if derived else ():
                zone, table = required.split(".", 1)
                if self.lake.current(zone, table) is None:
                    return f"needs {required}, which is not in the lake"
        return ""

    def frame_sql(self, indexes: Sequence[int], *, scoped: bool, read_out: bool = False) -> str:
        """The table as the checks see it: key columns, the columns they read, their derived columns;
        restricted to the scope's rows when `scoped`. `read_out`: the values leave DuckDB (examples,
        a DataFrame), so timestamps with a time zone become naive UTC, as the lake reads them."""
        wanted: list[str] = list(self.key)
        derived: dict[str, str] = {}
        for index in indexes:
            for name in self.compiled[index].check.columns:
                column = self.suite.derived_column(name)
                if column is not None:
                    derived[column.name] = column.sql
                else:
                    wanted.append(name)
        parts: list[str] = []
        for name in dict.fromkeys(wanted):
            if read_out and self.column_types[name].startswith("TIMESTAMP WITH TIME ZONE"):
                # The catalog session is UTC: the cast gives naive UTC wall time.
                parts.append(f"CAST({quote(name)} AS TIMESTAMP) AS {quote(name)}")
            else:
                parts.append(quote(name))
        parts.extend(f"({sql}) AS {quote(name)}" for name, sql in derived.items())
        where = f" WHERE {self.scope.sql()}" if scoped and self.scope is not None else ""
        return f"SELECT {', '.join(parts) or '1 AS _row'} FROM {self.source_sql}{where}"

    # -- counting -------------------------------------------------------------------------------
    def _select_items(self, index: int) -> str:
        item = self.compiled[index]
        if item.shape == "row":
            return f"count_if({item.unexpected_sql}) AS _c{index}"
        return f"{item.aggregate_sql} AS _c{index}"

    def _aggregate(self, indexes: Sequence[int], *, scoped: bool) -> _Counts:
        """One scan: the row count and every check's count or aggregate. If the combined query fails,
        each check runs alone, so an error is reported on the check that caused it."""
        frame = self.frame_sql(indexes, scoped=scoped)
        items = ", ".join(["count(*) AS _rows", *(self._select_items(i) for i in indexes)])
        try:
            row = self.con.execute(f"SELECT {items} FROM ({frame}) AS _frame").fetchone()
            assert row is not None
            return _Counts(int(row[0]), {i: row[n + 1] for n, i in enumerate(indexes)}, {})
        except duckdb.Error as exc:
            if not indexes:  # nothing but the frame itself: the scope (or the table) cannot be read
                if scoped:
                    raise ValueError(self._scope_error(exc)) from None
                raise
        counts = _Counts(self._count_rows(scoped), {}, {})
        for index in indexes:
            try:
                frame = self.frame_sql([index], scoped=scoped)
                counts.values[index] = self.con.execute(
                    f"SELECT {self._select_items(index)} FROM ({frame}) AS _frame").fetchone()[0]  # type: ignore[index]
            except duckdb.Error as exc:
                counts.errors[index] = f"could not be evaluated: {exc}"
        return counts

    def _count_rows(self, scoped: bool) -> int:
        try:
            return int(self.con.execute(f"SELECT count(*) FROM ({self.frame_sql([], scoped=scoped)})").fetchone()[0])  # type: ignore[index]
        except duckdb.Error as exc:
            if scoped:
                raise ValueError(self._scope_error(exc)) from None
            raise

    def _scope_error(self, exc: Exception) -> str:
        assert self.scope is not None
        return f"row scope for {self.suite.qualified_name} ({self.scope.sql()}) cannot filter the table: {exc}"

    def _duplicate_count(self, index: int) -> tuple[int | None, str]:
        groups = duplicate_groups_sql(self.frame_sql([index], scoped=False), self.compiled[index].columns)
        try:
            row = self.con.execute(f"SELECT coalesce(sum(_n), 0) FROM ({groups}) AS _dups").fetchone()
            return int(row[0]), ""  # type: ignore[index]
        except duckdb.Error as exc:
            return None, f"could not be evaluated: {exc}"

    # -- outcomes -------------------------------------------------------------------------------
    def _outcome(self, index: int, counts: _Counts) -> ExpectationOutcome:
        item = self.compiled[index]
        if index in counts.errors:
            return outcome_from_result(self.suite, item.check, success=False, error=counts.errors[index])
        value = counts.values[index]
        if item.shape == "aggregate":
            return outcome_from_result(self.suite, item.check, success=item.success_of(value),
                                       result={"observed_value": value})
        unexpected = int(value or 0)
        result: dict[str, Any] = {
            "element_count": counts.rows,
            "unexpected_count": unexpected,
            "unexpected_percent_total": 100.0 * unexpected / counts.rows if counts.rows else None,
        }
        if unexpected:
            result.update(self._examples(index, scoped=self._is_scoped(index)))
        return outcome_from_result(self.suite, item.check, success=unexpected == 0, result=result)

    def _is_scoped(self, index: int) -> bool:
        return self.scope is not None and not self.compiled[index].whole_table

    def _examples(self, index: int, *, scoped: bool) -> dict[str, Any]:
        """A few unexpected rows, in key order: their key columns and (unless the values may be
        personal data) the checked values, in the shape great-expectations reports them."""
        item = self.compiled[index]
        values = [] if item.check.pii else list(item.columns)
        selected = list(dict.fromkeys([*self.key, *values]))
        if not selected:  # personal data in a table without a key: nothing to show, nothing to read
            return {}
        order = ", ".join(quote(c) for c in (self.key or list(item.columns)))
        frame = self.frame_sql([index], scoped=scoped, read_out=True)
        names = ", ".join(f"_frame.{quote(c)}" for c in selected)
        if item.shape == "duplicates":
            match = " AND ".join(f"_frame.{quote(c)} IS NOT DISTINCT FROM _d.{quote(c)}" for c in item.columns)
            dups = duplicate_groups_sql(frame, item.columns)
            sql = (f"SELECT {names} FROM ({frame}) AS _frame WHERE EXISTS (SELECT 1 FROM ({dups}) AS _d "
                   f"WHERE {match}) ORDER BY {order} LIMIT {EXAMPLE_COUNT}")
        else:
            sql = (f"SELECT {names} FROM ({frame}) AS _frame WHERE {item.unexpected_sql} "
                   f"ORDER BY {order} LIMIT {EXAMPLE_COUNT}")
        try:
            rows = [dict(zip(selected, row, strict=True)) for row in fetch(self.con, sql).fetchall()]
        except duckdb.Error as exc:
            log.warning("%s: examples of %s not read: %s", self.suite.qualified_name, item.check.expectation, exc)
            return {}
        examples: list[Any] = []
        if values:
            for row in rows:
                if len(values) == 1:
                    examples.append(row[values[0]])
                elif item.shape == "duplicates":
                    examples.append({c: row[c] for c in values})
                else:
                    examples.append(tuple(row[c] for c in values))
        return {"partial_unexpected_list": examples,
                "partial_unexpected_index_list": [{k: row[k] for k in self.key} for row in rows]}

    # -- schema ---------------------------------------------------------------------------------
    def _schema_check(self) -> Check:
        return Check("expect_table_columns_to_match_set",
                     {"column_set": list(self.suite.expected_columns), "exact_match": False},
                     self.suite.schema_severity, "the table has every column of its contract")

    def _schema(self, check: Check) -> ExpectationOutcome:
        expected = list(check.kwargs["column_set"])
        present = list(self.column_types)
        missing = [c for c in expected if c not in self.column_types]
        unexpected = [c for c in present if c not in expected]
        exact = bool(check.kwargs.get("exact_match"))
        success = not missing and not (exact and unexpected)
        result: dict[str, Any] = {"observed_value": present}
        if not success:
            result["details"] = {"mismatched": {"unexpected": unexpected, "missing": missing}}
        return outcome_from_result(self.suite, check, success=success, result=result)
