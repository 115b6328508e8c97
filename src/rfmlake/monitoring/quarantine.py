"""Quarantine metrics of one bronze -> silver run, from its SilverReport (the reconciliation counts
and the quarantine reasons): rows in, rows quarantined and the quarantine rate, overall and per entity.

Rows of erased customers are quarantined too (reason erased_customer), but they are expected after an
erasure, not bad input: the rate leaves them out of both sides, so an erasure never looks like a spike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rfmlake.contract.entities import QuarantineReason
from rfmlake.errors import MetricsError
from rfmlake.monitoring.publishers import MetricDatum, MetricsPublisher

if TYPE_CHECKING:
    from rfmlake.ingest.silver import SilverReport

log = logging.getLogger(__name__)

ROWS_IN = "RowsIn"
ROWS_QUARANTINED = "RowsQuarantined"
QUARANTINE_RATE = "QuarantineRate"


@dataclass(frozen=True)
class QuarantineStats:
    rows_in: int = 0
    rows_quarantined: int = 0  # all reasons, as in silver.ingest_reconciliation
    rows_erased: int = 0       # of which: rows of erased customers

    @property
    def quarantine_rate(self) -> float | None:
        """Percent of the rows (erased customers' rows left out) that were quarantined; None without rows."""
        candidates = self.rows_in - self.rows_erased
        if candidates <= 0:
            return None
        return 100.0 * (self.rows_quarantined - self.rows_erased) / candidates

    def __add__(self, other: QuarantineStats) -> QuarantineStats:
        return QuarantineStats(self.rows_in + other.rows_in, self.rows_quarantined + other.rows_quarantined,
                               self.rows_erased + other.rows_erased)

    def to_dict(self) -> dict[str, Any]:
        rate = self.quarantine_rate
        return {"rows_in": self.rows_in, "rows_quarantined": self.rows_quarantined, "rows_erased": self.rows_erased,
                "quarantine_rate_percent": None if rate is None else round(rate, 4)}

    def datums(self, dimensions: tuple[tuple[str, str], ...]) -> list[MetricDatum]:
        data = [MetricDatum(ROWS_IN, self.rows_in, "Count", dimensions),
                MetricDatum(ROWS_QUARANTINED, self.rows_quarantined - self.rows_erased, "Count", dimensions)]
        rate = self.quarantine_rate
        if rate is not None:  # no rows, no rate: a missing datapoint, not a misleading 0 %
            data.append(MetricDatum(QUARANTINE_RATE, rate, "Percent", dimensions))
        return data


@dataclass(frozen=True)
class QuarantineMetrics:
    overall: QuarantineStats
    by_entity: dict[str, QuarantineStats] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.overall.to_dict(),
                "entities": {name: stats.to_dict() for name, stats in sorted(self.by_entity.items())}}

    def datums(self, environment: str) -> list[MetricDatum]:
        """Overall (dimension Environment) and per entity (Environment, Entity). The reasons stay in the
        run report and bronze.quarantine: a Reason dimension would multiply the metrics for little gain."""
        base = (("Environment", environment),)
        data = self.overall.datums(base)
        for name, stats in sorted(self.by_entity.items()):
            data += stats.datums((*base, ("Entity", name)))
        return data


def compute_quarantine_metrics(report: SilverReport) -> QuarantineMetrics:
    erased = QuarantineReason.ERASED_CUSTOMER.value
    by_entity: dict[str, QuarantineStats] = {}
    for row in report.reconciliation:
        by_entity[row.entity] = by_entity.get(row.entity, QuarantineStats()) + QuarantineStats(
            row.rows_in, row.rows_quarantined
        )
    for (entity, reason), rows in report.quarantine_counts.items():
        if reason == erased:
            by_entity[entity] = by_entity.get(entity, QuarantineStats()) + QuarantineStats(rows_erased=rows)
    overall = sum(by_entity.values(), QuarantineStats())
    return QuarantineMetrics(overall, by_entity)


def publish_quarantine_metrics(report: SilverReport, *, environment: str,
                               publisher: MetricsPublisher) -> dict[str, Any]:
    """Compute and publish; returns the metrics for the run report. The silver tables are committed
    by now, so a publishing failure is logged and recorded (`publish_error`), not raised: failing the
    stage would rerun the whole ingest for a monitoring problem."""
    metrics = compute_quarantine_metrics(report)
    summary: dict[str, Any] = {**metrics.to_dict(), "published_to": publisher.name}
    try:
        publisher.publish(metrics.datums(environment))
    except MetricsError as exc:
        log.error("quarantine metrics were not published to %s: %s", publisher.name, exc)
        summary["publish_error"] = str(exc)
    return summary
