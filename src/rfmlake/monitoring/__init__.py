"""Run metrics: what a run measured (quarantine rates per entity) and where it is published
(the run report only, or CloudWatch on AWS), chosen by configuration, never by code path."""

from rfmlake.monitoring.publishers import (
    METRICS_ENV,
    NAMESPACE,
    PUT_METRIC_DATA_MAX,
    CloudWatchMetricsPublisher,
    LocalMetricsPublisher,
    MetricsPublisher,
    metrics_publisher,
)
from rfmlake.monitoring.quarantine import (
    QUARANTINE_RATE,
    ROWS_IN,
    ROWS_QUARANTINED,
    MetricDatum,
    QuarantineMetrics,
    QuarantineStats,
    compute_quarantine_metrics,
    publish_quarantine_metrics,
)

__all__ = [
    "METRICS_ENV", "NAMESPACE", "PUT_METRIC_DATA_MAX", "QUARANTINE_RATE", "ROWS_IN", "ROWS_QUARANTINED",
    "CloudWatchMetricsPublisher", "LocalMetricsPublisher", "MetricDatum", "MetricsPublisher",
    "QuarantineMetrics", "QuarantineStats", "compute_quarantine_metrics", "metrics_publisher",
    "publish_quarantine_metrics",
]
