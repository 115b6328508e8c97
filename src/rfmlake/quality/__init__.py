"""Data quality: great-expectations suites per lake table, run after each zone is written.

    report = run_quality(lake, "silver", context=QualityContext.from_settings(settings))
    write(report.to_dict()); report.raise_for_critical()
"""

from rfmlake.quality.report import ExpectationOutcome, QualityReport, TableOutcome
from rfmlake.quality.runner import run_quality
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
    "Severity",
    "TableOutcome",
    "TableSuite",
    "gold_suites",
    "run_quality",
    "silver_suites",
    "suites_for",
]
