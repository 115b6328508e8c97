"""The suites in great-expectations itself: as GX ExpectationSuites (for anyone who wants GX's Data
Docs or to run them on another GX datasource) and validated by GX on a pandas DataFrame, which is the
reference the SQL runner (rfmlake.quality.runner) is held to in tests, and a way to check a sample
in a notebook. The pipeline does not use it: GX pulls the data into pandas, so its memory grows with
the table (docs/adr: quality checks compiled to SQL).

GX is imported lazily (it takes seconds) and kept quiet: no usage statistics, no progress bars, no
log chatter, an ephemeral in-memory context (nothing written to disk, nothing fetched).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rfmlake.quality.report import EXAMPLE_COUNT, ExpectationOutcome, outcome_from_result
from rfmlake.quality.suites import Check, TableSuite

if TYPE_CHECKING:
    import pandas as pd

_META_KEY = "rfmlake_check"


def import_gx() -> Any:
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for name in ("great_expectations", "great_expectations.core", "great_expectations.expectations"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations as gx
    return gx


def exception_message(exception_info: Any) -> str | None:
    """GE reports exceptions either as one info dict or as a dict of them keyed by metric."""
    if not isinstance(exception_info, Mapping):
        return None
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, Mapping) and info.get("raised_exception"):
            return str(info.get("exception_message") or "great-expectations raised an exception")
    return None


class GxValidator:
    """One ephemeral GE context with one pandas datasource."""

    def __init__(self) -> None:
        gx = import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        self._gx = gx
        self._configuration = ExpectationConfiguration
        self._context = gx.get_context(mode="ephemeral")
        self._context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self._datasource = self._context.data_sources.add_pandas(
            f"rfmlake_lake_{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        )
        self._assets = 0

    def expectation_suite(self, suite: TableSuite, checks: Sequence[tuple[int, Check]] | None = None) -> Any:
        """The suite's checks (or the given (index, check) pairs) as a GX ExpectationSuite; each
        expectation's meta carries its index in the suite."""
        gx_suite = self._gx.ExpectationSuite(name=suite.suite_name)
        for index, check in checks if checks is not None else enumerate(suite.checks):
            config = self._configuration(type=check.expectation, kwargs=dict(check.kwargs),
                                         meta={_META_KEY: index})
            gx_suite.add_expectation(config.to_domain_obj())
        return gx_suite

    def results(self, suite: TableSuite, frame: pd.DataFrame,
                checks: Sequence[tuple[int, Check]]) -> dict[int, tuple[bool, str | None, dict[str, Any]]]:
        """GX's raw answer per check index: (success, error, result in SUMMARY format)."""
        if not checks:
            return {}
        result_format: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": EXAMPLE_COUNT}
        key = [c for c in suite.key if c in frame.columns]
        if key:
            result_format["unexpected_index_column_names"] = key
        self._assets += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            asset = self._datasource.add_dataframe_asset(f"{suite.qualified_name}.{self._assets}")
            batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
                batch_parameters={"dataframe": frame}
            )
            validation = batch.validate(self.expectation_suite(suite, checks), result_format=result_format)
        answers: dict[int, tuple[bool, str | None, dict[str, Any]]] = {}
        for item in validation.results:
            error = exception_message(item.exception_info)
            answers[int(item.expectation_config.meta[_META_KEY])] = (
                bool(item.success) and error is None, error, dict(item.result or {}))
        return answers

    def validate(self, suite: TableSuite, frame: pd.DataFrame,
                 checks: Sequence[tuple[int, Check]]) -> dict[int, ExpectationOutcome]:
        """The checks validated by GX on `frame` (table and derived columns by name), as outcomes."""
        by_index = dict(checks)
        try:
            answers = self.results(suite, frame, checks)
        except Exception as exc:  # noqa: BLE001 - reported per expectation, like a failed expectation
            error = f"great-expectations could not validate: {type(exc).__name__}: {exc}"
            return {index: outcome_from_result(suite, check, success=False, error=error) for index, check in checks}
        outcomes = {index: outcome_from_result(suite, by_index[index], success=success, error=error, result=result)
                    for index, (success, error, result) in answers.items()}
        for index, check in checks:
            if index not in outcomes:
                outcomes[index] = outcome_from_result(suite, check, success=False,
                                                      error="great-expectations returned no result")
        return outcomes
