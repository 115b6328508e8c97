"""Metrics into alarms on the failure topic: any datapoint >= 1 (errors, failed runs), or a datapoint
above a configured threshold (the quarantine rate). No data (nothing ran) is never a breach."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from rfmlake.deploy.names import checked


def _alarm(scope: Construct, prefix: str, name: str, metric: cloudwatch.IMetric, threshold: float,
           comparison: cloudwatch.ComparisonOperator, topic: sns.ITopic,
           description: str | None = None) -> cloudwatch.Alarm:
    alarm = metric.create_alarm(
        scope,
        f"Alarm{name}",
        alarm_name=checked("cloudwatch_alarm", f"{prefix}-{name}"),
        alarm_description=description,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=comparison,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm


def alarm_on_any(scope: Construct, prefix: str, metrics: dict[str, cloudwatch.IMetric],
                 topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
    """One alarm `<prefix>-<name>` per metric: any datapoint >= 1 in a period notifies the topic."""
    at_least = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
    return {name: _alarm(scope, prefix, name, metric, 1, at_least, topic) for name, metric in metrics.items()}


def alarm_above(scope: Construct, prefix: str, name: str, metric: cloudwatch.IMetric, threshold: float,
                topic: sns.ITopic, description: str) -> cloudwatch.Alarm:
    """The alarm `<prefix>-<name>`: a datapoint above `threshold` in one period notifies the topic."""
    above = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
    return _alarm(scope, prefix, name, metric, threshold, above, topic, description)
