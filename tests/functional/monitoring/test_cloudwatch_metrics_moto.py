"""The CloudWatch publisher against moto in server mode: the quarantine metrics of a run arrive in
namespace rfmlake with their dimensions and values (read back with ListMetrics / GetMetricStatistics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rfmlake.ingest.silver import ReconciliationRow, SilverReport
from rfmlake.monitoring import metrics_publisher, publish_quarantine_metrics


def _maximum(cloudwatch, name: str, dimensions: dict[str, str]) -> float:
    """The metric with exactly these dimensions, as an alarm reads it (GetMetricData matches dimensions
    exactly; moto's GetMetricStatistics also counts metrics with more dimensions)."""
    now = datetime.now(UTC)
    (result,) = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "m", "MetricStat": {
            "Metric": {"Namespace": "rfmlake", "MetricName": name,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": 60, "Stat": "Maximum"}}],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=10),
    )["MetricDataResults"]
    (value,) = result["Values"]
    return value


def test_quarantine_metrics_reach_cloudwatch(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_METRICS", "cloudwatch")  # what the Glue job's --metrics argument selects
    report = SilverReport(
        reconciliation=[ReconciliationRow("orders", "o.csv", 200, 180, 20), ReconciliationRow("products", "p.csv", 50, 50, 0)],
        quarantine_counts={("orders", "duplicate"): 20},
    )
    summary = publish_quarantine_metrics(report, environment="rfmtest", publisher=metrics_publisher(boto3_session=aws))
    assert summary["published_to"] == "cloudwatch" and "publish_error" not in summary

    cloudwatch = aws.client("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace="rfmlake")["Metrics"]
    assert {(m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"]))) for m in listed} == {
        (name, dims)
        for name in ("RowsIn", "RowsQuarantined", "QuarantineRate")
        for dims in ((("Environment", "rfmtest"),),
                     (("Entity", "orders"), ("Environment", "rfmtest")),
                     (("Entity", "products"), ("Environment", "rfmtest")))
    }
    assert _maximum(cloudwatch, "QuarantineRate", {"Environment": "rfmtest"}) == pytest.approx(8.0)
    assert _maximum(cloudwatch, "QuarantineRate", {"Environment": "rfmtest", "Entity": "orders"}) == pytest.approx(10.0)
    assert _maximum(cloudwatch, "RowsIn", {"Environment": "rfmtest", "Entity": "products"}) == 50


def test_an_unreachable_cloudwatch_is_recorded_not_raised(aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    import boto3

    report = SilverReport([ReconciliationRow("orders", "o.csv", 10, 9, 1)], {("orders", "duplicate"): 1})
    summary = publish_quarantine_metrics(
        report, environment="rfmtest", publisher=metrics_publisher("cloudwatch", boto3_session=boto3.Session()))
    assert summary["rows_quarantined"] == 1
    assert "PutMetricData (rfmlake) failed" in summary["publish_error"]
