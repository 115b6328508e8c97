"""Where run metrics go: a port (MetricsPublisher) and two adapters.

- `local`: logs them; the run report JSON (summary.json) already records them. The default.
- `cloudwatch`: PutMetricData into namespace `rfmlake`, where the deployment's alarms watch them.

The choice is configuration: `metrics_publisher(name)` with the Glue job's `--metrics` argument, else
RFMLAKE_METRICS, else `local`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from rfmlake.errors import MetricsError

if TYPE_CHECKING:
    import boto3

log = logging.getLogger(__name__)

NAMESPACE = "rfmlake"
METRICS_ENV = "RFMLAKE_METRICS"
PUBLISHERS: tuple[str, ...] = ("local", "cloudwatch")
# PutMetricData limits (botocore's cloudwatch model and API reference): at most 1000 metrics per call,
# 30 dimensions per metric, names 1-255 and dimension values 1-1024 characters, finite values.
PUT_METRIC_DATA_MAX = 1000
MAX_DIMENSIONS = 30
MAX_NAME_LENGTH = 255
MAX_DIMENSION_VALUE_LENGTH = 1024

Unit = Literal["Count", "Percent"]


@dataclass(frozen=True)
class MetricDatum:
    name: str
    value: float
    unit: Unit
    dimensions: tuple[tuple[str, str], ...] = ()


class MetricsPublisher(Protocol):
    name: str

    def publish(self, data: Sequence[MetricDatum]) -> None:
        """Send every datum or raise MetricsError."""


class LocalMetricsPublisher:
    name = "local"

    def publish(self, data: Sequence[MetricDatum]) -> None:
        for datum in data:
            log.info("metric %s%s = %s %s", datum.name, dict(datum.dimensions), datum.value, datum.unit)


def validate_datum(datum: MetricDatum) -> None:
    problems = []
    if not 1 <= len(datum.name) <= MAX_NAME_LENGTH:
        problems.append(f"name must be 1-{MAX_NAME_LENGTH} characters")
    if not math.isfinite(datum.value):
        problems.append(f"value {datum.value} is not a finite number")
    if len(datum.dimensions) > MAX_DIMENSIONS:
        problems.append(f"{len(datum.dimensions)} dimensions (at most {MAX_DIMENSIONS})")
    for key, value in datum.dimensions:
        if not 1 <= len(key) <= MAX_NAME_LENGTH or not 1 <= len(value) <= MAX_DIMENSION_VALUE_LENGTH:
            problems.append(f"dimension {key!r}={value!r}: name 1-{MAX_NAME_LENGTH}, value "
                            f"1-{MAX_DIMENSION_VALUE_LENGTH} characters")
    if problems:
        raise MetricsError(f"metric {datum.name!r} cannot be published: {'; '.join(problems)}")


class CloudWatchMetricsPublisher:
    """PutMetricData in chunks of at most `max_per_call` (PUT_METRIC_DATA_MAX); one timestamp per publish."""

    name = "cloudwatch"

    def __init__(self, namespace: str = NAMESPACE, *, boto3_session: boto3.Session | None = None,
                 max_per_call: int = PUT_METRIC_DATA_MAX) -> None:
        if not 1 <= len(namespace) <= MAX_NAME_LENGTH or namespace.startswith((":", "AWS/")):
            raise MetricsError(f"CloudWatch namespace {namespace!r}: 1-255 characters, not starting with ':' or 'AWS/'")
        if not 1 <= max_per_call <= PUT_METRIC_DATA_MAX:
            raise MetricsError(f"max_per_call must be 1-{PUT_METRIC_DATA_MAX} (the PutMetricData limit), "
                               f"got {max_per_call}")
        self.namespace = namespace
        self.max_per_call = max_per_call
        self._boto3_session = boto3_session
        self._client: Any | None = None

    @property
    def client(self) -> Any:
        if self._client is None:  # on first use, never at import
            try:
                import boto3
            except ImportError:
                raise MetricsError("the CloudWatch publisher needs boto3: pip install 'rfmlake[aws]'") from None
            self._client = (self._boto3_session or boto3.Session()).client("cloudwatch")
        return self._client

    def publish(self, data: Sequence[MetricDatum]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for datum in data:
            validate_datum(datum)
        timestamp = datetime.now(UTC)
        entries = [{"MetricName": d.name, "Value": float(d.value), "Unit": d.unit, "Timestamp": timestamp,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in d.dimensions]} for d in data]
        for start in range(0, len(entries), self.max_per_call):
            try:
                self.client.put_metric_data(Namespace=self.namespace,
                                            MetricData=entries[start:start + self.max_per_call])
            except (ClientError, BotoCoreError) as exc:
                raise MetricsError(f"CloudWatch PutMetricData ({self.namespace}) failed: {exc}") from None


def metrics_publisher(name: str | None = None, *, env: Mapping[str, str] | None = None,
                      boto3_session: boto3.Session | None = None) -> MetricsPublisher:
    """The publisher named `name`, else by RFMLAKE_METRICS, else `local`."""
    choice = (name or (os.environ if env is None else env).get(METRICS_ENV) or "local").strip().lower()
    if choice == "local":
        return LocalMetricsPublisher()
    if choice == "cloudwatch":
        return CloudWatchMetricsPublisher(boto3_session=boto3_session)
    raise MetricsError(f"unknown metrics publisher {choice!r} ({METRICS_ENV} or --metrics); "
                       f"choose one of: {', '.join(PUBLISHERS)}")
