"""Data quality: suites of great-expectations expectations per lake table, run as SQL in DuckDB
after each zone is written (rfmlake.quality.gx runs the same suites in great-expectations itself).

    report = run_quality(lake, "silver", context=QualityContext.from_settings(settings))
    write(report.to_dict()); report.raise_for_critical()

In an incremental run, row checks can be limited to the changed rows of a table:

    run_quality(lake, "silver", context=ctx, scope={"silver.orders": RowScope.of_files(new_files)})
"""

from rfmlake.quality.report import ExpectationOutcome, QualityReport, TableOutcome
from rfmlake.quality.runner import run_quality
from rfmlake.quality.sql import RowScope
from rfmlake.quality.suites import (
    Check,
    Derived,
    QualityContext,
    Severity,
    TableSuite,
    gold_suites,
    silver_suites,
    suites_for,
)

__all__ = [
    "Check",
    "Derived",
    "ExpectationOutcome",
    "QualityContext",
    "QualityReport",
    "RowScope",
    "Severity",
    "TableOutcome",
    "TableSuite",
    "gold_suites",
    "run_quality",
    "silver_suites",
    "suites_for",
]
