"""The outcome of a quality run: per table, per expectation; rendered as plain text for people and
as a dict for the run's JSON report. Values held here are already plain (JSON-safe) and never
personal data: PII checks keep counts and row keys only (see outcome_from_result)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from rfmlake.errors import QualityError
from rfmlake.quality.suites import Check, Severity, TableSuite

TableStatus = Literal["validated", "skipped", "missing"]
EXAMPLE_COUNT = 5
_MAX_RENDERED_SET = 8
_COLUMN_KWARGS = frozenset({"column", "column_A", "column_B", "column_list"})


def to_plain(value: Any) -> Any:
    """A JSON-safe copy: numpy/pandas scalars to Python, datetimes to ISO strings, NaN/NaT to None."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if type(value).__name__ in ("NAType", "NaTType"):  # before datetime: pd.NaT is a datetime
        return None
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    # numpy / pandas scalars (np.int64, np.bool_, np.datetime64)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if type(value).__name__ == "datetime64":
        import numpy as np

        return None if np.isnat(value) else str(value)
    if hasattr(value, "item"):
        return to_plain(value.item())
    return str(value)


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation: str  # GE type, e.g. expect_column_values_to_be_unique
    columns: tuple[str, ...]  # table columns it reads
    severity: Severity
    success: bool
    description: str
    parameters: Mapping[str, Any] = field(default_factory=dict)  # plain kwargs minus column names
    pii: bool = False
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    unexpected_examples: tuple[Any, ...] = ()  # distinct unexpected values; always empty when pii
    unexpected_rows: tuple[Mapping[str, Any], ...] = ()  # key columns of a few unexpected rows
    error: str | None = None  # the expectation could not be evaluated (counts as a failure)

    @property
    def is_critical_failure(self) -> bool:
        return not self.success and self.severity is Severity.CRITICAL

    @property
    def is_warning(self) -> bool:
        return not self.success and self.severity is Severity.WARNING

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "columns": list(self.columns),
            "severity": str(self.severity),
            "success": self.success,
            "description": self.description,
            "parameters": to_plain(self.parameters),
            "pii": self.pii,
            "element_count": self.element_count,
            "unexpected_count": self.unexpected_count,
            "unexpected_percent": self.unexpected_percent,
            "observed_value": to_plain(self.observed_value),
            "unexpected_examples": to_plain(list(self.unexpected_examples)),
            "unexpected_rows": to_plain(list(self.unexpected_rows)),
            "error": self.error,
        }

    def render_lines(self) -> list[str]:
        status = "ok  " if self.success else "FAIL"
        columns = f" [{', '.join(self.columns)}]" if self.columns else ""
        params = _render_parameters(self.parameters)
        lines = [f"  {status} {self.severity:<8} {self.expectation}{columns}{params}: {self.description}"]
        if self.success:
            return lines
        detail: list[str] = []
        if self.error:
            detail.append(f"not evaluated: {self.error}")
        if self.unexpected_count is not None:
            of = f" of {self.element_count:,} rows" if self.element_count is not None else ""
            pct = f" ({self.unexpected_percent:.2f}%)" if self.unexpected_percent is not None else ""
            detail.append(f"{self.unexpected_count:,} unexpected{of}{pct}")
        elif self.observed_value is not None:
            detail.append(f"observed {_short(self.observed_value)}")
        if self.pii:
            detail.append("values hidden (personal data)")
        elif self.unexpected_examples:
            detail.append("examples: " + ", ".join(_short(v) for v in self.unexpected_examples))
        if self.unexpected_rows:
            rows = "; ".join(", ".join(f"{k}={_short(v)}" for k, v in row.items()) for row in self.unexpected_rows)
            detail.append(f"rows: {rows}")
        if detail:
            lines.append("         " + "; ".join(detail))
        return lines


def outcome_from_result(suite: TableSuite, check: Check, *, success: bool, error: str | None = None,
                        result: Mapping[str, Any] | None = None) -> ExpectationOutcome:
    """An ExpectationOutcome from a result in great-expectations' SUMMARY shape (element_count,
    unexpected_count, unexpected_percent[_total], observed_value, details.mismatched,
    partial_unexpected_list, partial_unexpected_index_list), whichever engine computed it. A PII
    check keeps counts and row keys only."""
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
        # Row keys only: an index entry may also hold the checked column's value, which for a token
        # column may be the clear-text e-mail it caught.
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


@dataclass(frozen=True)
class TableOutcome:
    table: str  # qualified, e.g. silver.orders
    status: TableStatus
    required: bool = False
    row_count: int | None = None
    reason: str = ""
    expectations: tuple[ExpectationOutcome, ...] = ()
    # An incremental run's row scope: row checks read `rows_in_scope` rows (their element_count),
    # table-level checks all `row_count`. Empty scope: the whole table.
    scope: str = ""
    rows_in_scope: int | None = None

    @property
    def critical_failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if e.is_critical_failure)

    @property
    def warnings(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if e.is_warning)

    @property
    def is_critical_failure(self) -> bool:
        return self.status == "missing" or bool(self.critical_failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "status": self.status,
            "required": self.required,
            "row_count": self.row_count,
            "reason": self.reason,
            "row_scope": {"scope": self.scope, "rows_in_scope": self.rows_in_scope} if self.scope else None,
            "expectations": [e.to_dict() for e in self.expectations],
        }

    def heading(self) -> str:
        if self.status == "skipped":
            return f"{self.table}: skipped ({self.reason})"
        if self.status == "missing":
            return f"{self.table}: MISSING, critical ({self.reason})"
        rows = f"{self.row_count:,} rows" if self.row_count is not None else "row count unknown"
        if self.scope:
            in_scope = f"{self.rows_in_scope:,}" if self.rows_in_scope is not None else "unknown"
            rows += f"; row checks on {in_scope} rows of {self.scope}"
        return f"{self.table} ({rows})"


@dataclass(frozen=True)
class QualityReport:
    zone: str
    run_at: datetime
    tables: tuple[TableOutcome, ...]
    duration_seconds: float = 0.0

    @property
    def expectations(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for t in self.tables for e in t.expectations)

    @property
    def critical_failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if e.is_critical_failure)

    @property
    def warnings(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if e.is_warning)

    @property
    def missing_tables(self) -> tuple[TableOutcome, ...]:
        return tuple(t for t in self.tables if t.status == "missing")

    @property
    def skipped_tables(self) -> tuple[TableOutcome, ...]:
        return tuple(t for t in self.tables if t.status == "skipped")

    @property
    def has_critical_failures(self) -> bool:
        return bool(self.critical_failures or self.missing_tables)

    def table(self, qualified_name: str) -> TableOutcome:
        for outcome in self.tables:
            if outcome.table == qualified_name:
                return outcome
        raise KeyError(f"{qualified_name} is not in this report; tables: {[t.table for t in self.tables]}")

    def summary(self) -> str:
        verdict = "FAILED" if self.has_critical_failures else "PASSED"
        parts = [
            f"{len(self.critical_failures) + len(self.missing_tables)} critical failed",
            f"{len(self.warnings)} warning(s) failed",
            f"{len(self.expectations)} expectations on {sum(t.status == 'validated' for t in self.tables)} tables",
        ]
        if self.skipped_tables:
            parts.append(f"{len(self.skipped_tables)} table(s) skipped")
        return (f"Data quality, {self.zone} zone, run {self.run_at:%Y-%m-%dT%H:%M:%SZ}: {verdict} "
                f"({'; '.join(parts)})")

    def render(self, *, show_passed: bool = False) -> str:
        """A readable plain-text report: every failure with counts and examples; passed expectations
        are counted per table (listed with show_passed=True)."""
        lines = [self.summary()]
        for outcome in self.tables:
            lines.append("")
            lines.append(outcome.heading())
            passed = [e for e in outcome.expectations if e.success]
            for expectation in outcome.expectations:
                if show_passed or not expectation.success:
                    lines.extend(expectation.render_lines())
            if passed and not show_passed:
                lines.append(f"  ok   {len(passed)} expectation(s) passed")
        return "\n".join(lines)

    def render_critical(self) -> str:
        """Only what stops the run: missing required tables and failed critical expectations."""
        count = len(self.critical_failures) + len(self.missing_tables)
        lines = [f"data quality failed in the {self.zone} zone: {count} critical expectation(s) failed"]
        for outcome in self.tables:
            if not outcome.is_critical_failure:
                continue
            lines.append("")
            lines.append(outcome.heading())
            for expectation in outcome.critical_failures:
                lines.extend(expectation.render_lines())
        return "\n".join(lines)

    def raise_for_critical(self) -> None:
        """Raise QualityError (message: the failed critical expectations) if any failed."""
        if self.has_critical_failures:
            raise QualityError(self.render_critical())

    def to_dict(self) -> dict[str, Any]:
        return {
            "zone": self.zone,
            "run_at": self.run_at.isoformat(),
            "passed": not self.has_critical_failures,
            "critical_failures": len(self.critical_failures) + len(self.missing_tables),
            "warnings": len(self.warnings),
            "duration_seconds": round(self.duration_seconds, 3),
            "tables": [t.to_dict() for t in self.tables],
        }


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render_parameters(parameters: Mapping[str, Any]) -> str:
    shown: list[str] = []
    for key, value in parameters.items():
        if key == "value_set" and isinstance(value, list):
            items = [_short(v, 30) for v in value[:_MAX_RENDERED_SET]]
            more = f", ... +{len(value) - _MAX_RENDERED_SET}" if len(value) > _MAX_RENDERED_SET else ""
            shown.append(f"value_set={{{', '.join(items)}{more}}}")
        elif key in ("column_set", "exact_match") or (
            key in ("strict_min", "strict_max", "or_equal") and value is False
        ):
            continue  # the schema's column list is long; a failure shows what is missing
        else:
            shown.append(f"{key}={_short(value)}")
    return f" ({', '.join(shown)})" if shown else ""
