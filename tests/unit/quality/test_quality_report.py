"""Report rendering, the QualityError message, JSON shape, and PII redaction of GE results."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from rfmlake.errors import QualityError
from rfmlake.quality import ExpectationOutcome, QualityReport, Severity, TableOutcome, silver_suites
from rfmlake.quality.gx import exception_message
from rfmlake.quality.report import outcome_from_result, to_plain
from rfmlake.quality.suites import QualityContext

RUN_AT = datetime(2024, 6, 1, 12, tzinfo=UTC)


def _outcome_of(severity: Severity, success: bool, **extra) -> ExpectationOutcome:
    return ExpectationOutcome(expectation="expect_column_values_to_be_unique", columns=("order_id",),
                              severity=severity, success=success, description="order_id identifies one row",
                              **extra)


def _report(*expectations: ExpectationOutcome, extra_tables: tuple[TableOutcome, ...] = ()) -> QualityReport:
    table = TableOutcome("silver.orders", "validated", required=True, row_count=1000, expectations=expectations)
    return QualityReport("silver", RUN_AT, (table, *extra_tables))


def test_warnings_only_do_not_raise() -> None:
    report = _report(_outcome_of(Severity.WARNING, False, unexpected_count=3, element_count=1000),
                     _outcome_of(Severity.CRITICAL, True))
    report.raise_for_critical()
    assert report.render().splitlines()[0].endswith(
        "PASSED (0 critical failed; 1 warning(s) failed; 2 expectations on 1 tables)")


def test_critical_message_names_table_column_expectation_and_count() -> None:
    failed = _outcome_of(Severity.CRITICAL, False, unexpected_count=2, element_count=1000, unexpected_percent=0.2,
                         unexpected_examples=("o7",), unexpected_rows=({"order_id": "o7"},))
    report = _report(failed, _outcome_of(Severity.WARNING, False, unexpected_count=5),
                     extra_tables=(TableOutcome("silver.events", "skipped", reason="not in the lake"),))

    with pytest.raises(QualityError) as caught:
        report.raise_for_critical()

    assert str(caught.value) == (
        "data quality failed in the silver zone: 1 critical expectation(s) failed\n"
        "\n"
        "silver.orders (1,000 rows)\n"
        "  FAIL critical expect_column_values_to_be_unique [order_id]: order_id identifies one row\n"
        "         2 unexpected of 1,000 rows (0.20%); examples: 'o7'; rows: order_id='o7'"
    )


def test_missing_required_table_is_critical() -> None:
    report = QualityReport("gold", RUN_AT, (
        TableOutcome("gold.customer_rfm", "missing", required=True, reason="required table is not in the lake"),))
    assert report.has_critical_failures
    with pytest.raises(QualityError, match="gold.customer_rfm: MISSING, critical"):
        report.raise_for_critical()
    assert report.to_dict()["critical_failures"] == 1


def test_to_dict_is_json_ready() -> None:
    report = _report(_outcome_of(Severity.CRITICAL, False, observed_value=np.int64(0),
                                 parameters={"max_value": datetime(2024, 6, 1)}))
    data = json.loads(json.dumps(report.to_dict()))
    [expectation] = data["tables"][0]["expectations"]
    assert expectation["observed_value"] == 0
    assert expectation["parameters"] == {"max_value": "2024-06-01T00:00:00"}
    assert (data["passed"], data["zone"], data["run_at"]) == (False, "silver", "2024-06-01T12:00:00+00:00")


def test_to_plain_handles_pandas_and_numpy_values() -> None:
    assert to_plain([np.int32(7), np.float64("nan"), pd.NA, pd.NaT, pd.Timestamp("2024-01-01"),
                     np.datetime64("2024-01-02T00:00"), np.bool_(True), (1, "a")]) == [
        7, None, None, None, "2024-01-01T00:00:00", "2024-01-02T00:00", True, [1, "a"]]


_CUSTOMERS = next(s for s in silver_suites(QualityContext(run_at=RUN_AT, known_currencies=frozenset({"EUR"})))
                  if s.table == "customers")
_GE_RESULT = {  # the shape great-expectations 1.x returns with result_format SUMMARY + index columns
    "element_count": 3, "unexpected_count": 1, "unexpected_percent": 50.0, "unexpected_percent_total": 33.3,
    "partial_unexpected_list": ["ann@example.com"],
    "partial_unexpected_counts": [{"value": "ann@example.com", "count": 1}],
    "partial_unexpected_index_list": [{"email_token": "ann@example.com", "customer_id": "c1"}],
}


def test_pii_check_keeps_counts_and_row_keys_only() -> None:
    check = next(c for c in _CUSTOMERS.checks if c.columns == ("email_token",))

    outcome = outcome_from_result(_CUSTOMERS, check, success=False, result=_GE_RESULT)

    assert (outcome.unexpected_count, outcome.unexpected_percent) == (1, 33.3)
    assert outcome.unexpected_examples == ()
    assert outcome.unexpected_rows == ({"customer_id": "c1"},)
    assert "ann@example.com" not in json.dumps(outcome.to_dict()) + "\n".join(outcome.render_lines())


def test_non_pii_check_keeps_examples_but_drops_the_checked_value_from_row_keys() -> None:
    check = next(c for c in _CUSTOMERS.checks if c.columns == ("country",))
    result = {**_GE_RESULT, "partial_unexpected_list": ["se", "se", None],
              "partial_unexpected_index_list": [{"country": "se", "customer_id": "c1"}]}

    outcome = outcome_from_result(_CUSTOMERS, check, success=False, result=result)

    assert outcome.unexpected_examples == ("se",)
    assert outcome.unexpected_rows == ({"customer_id": "c1"},)


def test_exception_info_shapes() -> None:
    assert exception_message({"raised_exception": False, "exception_message": None}) is None
    nested = {"metric-a": {"raised_exception": True, "exception_message": 'The column "x" does not exist.'}}
    assert exception_message(nested) == 'The column "x" does not exist.'
