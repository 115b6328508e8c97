"""Quarantine metrics from a hand-built SilverReport: counts, rates overall and per entity, erasures
left out of the rate, and the datums (names, units, dimensions) a publisher receives."""

from __future__ import annotations

import pytest

from rfmlake.errors import MetricsError
from rfmlake.ingest.silver import ReconciliationRow, SilverReport
from rfmlake.monitoring import (
    LocalMetricsPublisher,
    MetricDatum,
    compute_quarantine_metrics,
    publish_quarantine_metrics,
)


def _report() -> SilverReport:
    return SilverReport(
        reconciliation=[
            ReconciliationRow("orders", "orders/a.csv", 60, 57, 3),
            ReconciliationRow("orders", "orders/b.csv", 40, 38, 2),
            ReconciliationRow("customers", "customers/c.csv", 50, 40, 10),  # 4 of them erased customers
            ReconciliationRow("events", "events/e.jsonl", 0, 0, 0),
        ],
        quarantine_counts={("orders", "duplicate"): 5, ("customers", "bad_email"): 6,
                           ("customers", "erased_customer"): 4},
    )


def test_rows_and_rates_overall_and_per_entity() -> None:
    metrics = compute_quarantine_metrics(_report())
    orders, customers, events = (metrics.by_entity[n] for n in ("orders", "customers", "events"))
    assert (orders.rows_in, orders.rows_quarantined, orders.rows_erased) == (100, 5, 0)
    assert orders.quarantine_rate == pytest.approx(5.0)
    assert (customers.rows_in, customers.rows_quarantined, customers.rows_erased) == (50, 10, 4)
    assert customers.quarantine_rate == pytest.approx(100 * 6 / 46)  # erased rows out of both sides
    assert events.quarantine_rate is None  # no rows: no rate rather than a misleading 0 %
    overall = metrics.overall
    assert (overall.rows_in, overall.rows_quarantined, overall.rows_erased) == (150, 15, 4)
    assert overall.quarantine_rate == pytest.approx(100 * 11 / 146)


def test_an_erasure_alone_is_no_quarantine_spike() -> None:
    report = SilverReport([ReconciliationRow("customers", "c.csv", 10, 2, 8)], {("customers", "erased_customer"): 8})
    assert compute_quarantine_metrics(report).overall.quarantine_rate == 0.0


def test_datums_carry_environment_and_entity_dimensions() -> None:
    data = compute_quarantine_metrics(_report()).datums("rfmlake_dev")
    by_key = {(d.name, d.dimensions): d for d in data}
    overall = (("Environment", "rfmlake_dev"),)
    orders = (*overall, ("Entity", "orders"))
    assert by_key[("QuarantineRate", overall)].unit == "Percent"
    assert by_key[("QuarantineRate", overall)].value == pytest.approx(100 * 11 / 146)
    assert by_key[("RowsIn", orders)] == MetricDatum("RowsIn", 100, "Count", orders)
    assert by_key[("RowsQuarantined", (*overall, ("Entity", "customers")))].value == 6  # erased left out
    events = (*overall, ("Entity", "events"))
    assert ("RowsIn", events) in by_key and ("QuarantineRate", events) not in by_key
    assert {k for d in data for k, _ in d.dimensions} == {"Environment", "Entity"}  # no per-reason metrics
    assert len(data) == 3 * 4 - 1  # overall + 3 entities, 3 metrics each, no rate for the empty entity


def test_run_report_records_the_metrics_and_a_publishing_failure() -> None:
    class Failing:
        name = "cloudwatch"

        def publish(self, data: object) -> None:
            raise MetricsError("AccessDenied")

    summary = publish_quarantine_metrics(_report(), environment="rfmlake", publisher=LocalMetricsPublisher())
    assert summary["published_to"] == "local" and "publish_error" not in summary
    assert summary["rows_in"] == 150 and summary["quarantine_rate_percent"] == round(100 * 11 / 146, 4)
    assert summary["entities"]["orders"]["quarantine_rate_percent"] == 5.0
    failed = publish_quarantine_metrics(_report(), environment="rfmlake", publisher=Failing())
    assert failed["publish_error"] == "AccessDenied" and failed["rows_quarantined"] == 15
