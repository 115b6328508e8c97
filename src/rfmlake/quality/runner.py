"""Run a zone's suites with great-expectations 1.x on DataFrames read from the lake's catalog.

GE is imported lazily (it takes seconds) and kept quiet: no usage statistics, no progress bars, no
log chatter, an ephemeral in-memory context (nothing written to disk, nothing fetched).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.quality.report import ExpectationOutcome, QualityReport, TableOutcome, to_plain
from rfmlake.quality.suites import Check, QualityContext, TableSuite, suites_for

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

log = logging.getLogger(__name__)

EXAMPLE_COUNT = 5
_COLUMN_KWARGS = frozenset({"column", "column_A", "column_B", "column_list"})
_META_KEY = "rfmlake_check"


def run_quality(lake: Lake, zone: str, *, context: QualityContext) -> QualityReport:
    """Validate every table of `zone` that has a suite. Tables absent from the lake are reported as
    skipped, or as missing (a critical failure) when their suite is required. Never raises for bad
    data: call `raise_for_critical()` on the report to stop a run."""
    suites = suites_for(zone, context)
    started = time.perf_counter()
    validator: _GxValidator | None = None
    outcomes: list[TableOutcome] = []
    con = connect(lake)
    try:
        for suite in suites:
            if lake.current(suite.zone, suite.table) is None:
                outcomes.append(_absent(suite))
                continue
            if validator is None:
                validator = _GxValidator()
            outcomes.append(_run_suite(con, lake, suite, validator))
    finally:
        con.close()
    report = QualityReport(zone, context.run_at, tuple(outcomes), time.perf_counter() - started)
    log.info("%s", report.summary())
    return report


def _absent(suite: TableSuite) -> TableOutcome:
    if suite.required:
        return TableOutcome(suite.qualified_name, "missing", required=True,
                            reason="required table is not in the lake")
    return TableOutcome(suite.qualified_name, "skipped", reason="not in the lake")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _run_suite(con: duckdb.DuckDBPyConnection, lake: Lake, suite: TableSuite,
               validator: _GxValidator) -> TableOutcome:
    table_sql = f"{_quote(suite.zone)}.{_quote(suite.table)}"
    column_types: dict[str, str] = {
        name: str(type_) for name, type_, *_ in con.execute(f"DESCRIBE {table_sql}").fetchall()
    }
    row_count = int(con.execute(f"SELECT count(*) FROM {table_sql}").fetchone()[0])  # type: ignore[index]

    runnable: list[tuple[int, Check]] = []
    not_evaluated: dict[int, ExpectationOutcome] = {}
    for index, check in enumerate(suite.checks):
        reason = _why_not_runnable(lake, suite, check, column_types)
        if reason:
            not_evaluated[index] = _outcome(suite, check, success=False, error=reason)
        else:
            runnable.append((index, check))

    key = [c for c in suite.key if c in column_types]
    frame = con.execute(_select_sql(table_sql, suite, [c for _, c in runnable], key, column_types)).df()

    results: dict[int, ExpectationOutcome] = dict(not_evaluated)
    results.update(validator.validate(suite, frame, runnable, key))
    expectations = [_schema_outcome(suite, column_types, validator)] if suite.expected_columns else []
    expectations.extend(results[i] for i in range(len(suite.checks)))
    return TableOutcome(suite.qualified_name, "validated", required=suite.required, row_count=row_count,
                        expectations=tuple(expectations))


def _why_not_runnable(lake: Lake, suite: TableSuite, check: Check, column_types: Mapping[str, str]) -> str:
    missing = [c for c in suite.source_columns(check) if c not in column_types]
    if missing:
        return f"column(s) {', '.join(missing)} not in {suite.qualified_name}"
    for name in check.columns:
        derived = suite.derived_column(name)
        for required in derived.requires if derived else ():
            zone, table = required.split(".", 1)
            if lake.current(zone, table) is None:
                return f"needs {required}, which is not in the lake"
    return ""


def _select_sql(table_sql: str, suite: TableSuite, checks: Sequence[Check], key: Sequence[str],
                column_types: Mapping[str, str]) -> str:
    # Only the columns the checks read: a 1M-row table with wide text columns stays small in pandas.
    wanted: list[str] = list(key)
    derived: dict[str, str] = {}
    for check in checks:
        for name in check.columns:
            column = suite.derived_column(name)
            if column is not None:
                derived[column.name] = column.sql
            else:
                wanted.append(name)
    parts: list[str] = []
    for name in dict.fromkeys(wanted):
        if column_types[name].startswith("TIMESTAMP WITH TIME ZONE"):
            # The catalog session is UTC: the cast gives naive UTC wall time, comparable to run_at.
            parts.append(f"CAST({_quote(name)} AS TIMESTAMP) AS {_quote(name)}")
        else:
            parts.append(_quote(name))
    parts.extend(f"({sql}) AS {_quote(name)}" for name, sql in derived.items())
    return f"SELECT {', '.join(parts) or '1 AS _row'} FROM {table_sql}"


def _schema_outcome(suite: TableSuite, column_types: Mapping[str, str],
                    validator: _GxValidator) -> ExpectationOutcome:
    check = Check("expect_table_columns_to_match_set",
                  {"column_set": list(suite.expected_columns), "exact_match": False}, suite.schema_severity,
                  "the table has every column of its contract")
    import pandas as pd

    empty = pd.DataFrame({name: pd.Series(dtype="object") for name in column_types})
    return validator.validate(suite, empty, [(0, check)], [], asset_suffix="schema")[0]


def _outcome(suite: TableSuite, check: Check, *, success: bool, error: str | None = None,
             result: Mapping[str, Any] | None = None) -> ExpectationOutcome:
    result = result or {}
    parameters = {k: to_plain(v) for k, v in check.kwargs.items() if k not in _COLUMN_KWARGS}
    element_count = result.get("element_count")
    unexpected_count = result.get("unexpected_count")
    percent = result.get("unexpected_percent_total", result.get("unexpected_percent"))
    observed = result.get("observed_value")
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched is not None:
        observed = to_plain(mismatched)
    examples: tuple[Any, ...] = ()
    rows: tuple[Mapping[str, Any], ...] = ()
    if not success:
        if not check.pii:
            seen: list[Any] = []
            for value in result.get("partial_unexpected_list") or ():
                plain = to_plain(value)
                # None (a null) and booleans (a derived yes/no) say nothing the description does not.
                if plain is not None and not isinstance(plain, bool) and plain not in seen:
                    seen.append(plain)
            examples = tuple(seen[:EXAMPLE_COUNT])
        # Row keys only: GE also puts the checked column's value in each index entry, which for a
        # token column may be the clear-text e-mail it caught.
        key = set(suite.key)
        rows = tuple(
            {k: to_plain(v) for k, v in entry.items() if k in key}
            for entry in (result.get("partial_unexpected_index_list") or ())[:EXAMPLE_COUNT]
            if isinstance(entry, Mapping)
        )
        rows = tuple({repr(r): r for r in rows if r}.values())
    return ExpectationOutcome(
        expectation=check.expectation,
        columns=suite.source_columns(check),
        severity=check.severity,
        success=success,
        description=check.description,
        parameters=parameters,
        pii=check.pii,
        element_count=int(element_count) if element_count is not None else None,
        unexpected_count=int(unexpected_count) if unexpected_count is not None else None,
        unexpected_percent=float(percent) if percent is not None else None,
        observed_value=None if check.pii else to_plain(observed),
        unexpected_examples=examples,
        unexpected_rows=rows,
        error=error,
    )


def _exception_message(exception_info: Any) -> str | None:
    """GE reports exceptions either as one info dict or as a dict of them keyed by metric."""
    if not isinstance(exception_info, Mapping):
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            return str(info.get("exception_message") or "great-expectations raised an exception")
    return None


def _import_gx() -> Any:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for name in ("great_expectations", "great_expectations.core", "great_expectations.expectations"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
    return gx


class _GxValidator:
    """One ephemeral GE context per quality run, with one pandas datasource."""

    def __init__(self) -> None:
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        self._gx = gx
        self._configuration = ExpectationConfiguration
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self._datasource = self._context.data_sources.add_pandas(
            f"rfmlake_lake_{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        )

    def validate(self, suite: TableSuite, frame: pd.DataFrame, checks: Sequence[tuple[int, Check]],
                 key: Sequence[str], asset_suffix: str = "data") -> dict[int, ExpectationOutcome]:
        if not checks:
            return {}
        gx_suite = self._gx.ExpectationSuite(name=f"{suite.suite_name}_{asset_suffix}")
        for index, check in checks:
            config = self._configuration(type=check.expectation, kwargs=dict(check.kwargs),
                                         meta={_META_KEY: index})
            gx_suite.add_expectation(config.to_domain_obj())
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_COUNT}
        if key:
            result_format["unexpected_index_column_names"] = list(key)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                asset = self._datasource.add_dataframe_asset(f"{suite.qualified_name}.{asset_suffix}")
                batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
                    batch_parameters={"dataframe": frame}
                )
                validation = batch.validate(gx_suite, result_format=result_format)
        except Exception as exc:  # noqa: BLE001 - reported per expectation; critical ones stop the run
            error = f"great-expectations could not validate: {type(exc).__name__}: {exc}"
            return {index: _outcome(suite, check, success=False, error=error) for index, check in checks}
        by_index = dict(checks)
        outcomes: dict[int, ExpectationOutcome] = {}
        for item in validation.results:
            index = int(item.expectation_config.meta[_META_KEY])
            error = _exception_message(item.exception_info)
            outcomes[index] = _outcome(suite, by_index[index], success=bool(item.success) and error is None,
                                       error=error, result=dict(item.result or {}))
        for index, check in checks:
            if index not in outcomes:
                outcomes[index] = _outcome(suite, check, success=False, error="great-expectations returned no result")
        return outcomes
