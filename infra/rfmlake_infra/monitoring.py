"""Metrics into alarms on the failure topic: any datapoint >= 1 (errors, failed runs), or a datapoint
above a configured threshold (the quarantine rate)."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_sns as sns
from constructs import Construct


def alarm_on_any(scope: Construct, prefix: str, metrics: dict[str, cloudwatch.IMetric],
                 topic: sns.ITopic) -> dict[str, cloudwatch.Alarm]:
    action = cw_actions.SnsAction(topic)
    alarms: dict[str, cloudwatch.Alarm] = {}
    for name, metric in metrics.items():
        alarm = metric.create_alarm(
            scope,
            f"Alarm{name}",
            alarm_name=f"{prefix}-{name}",
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(action)
        alarms[name] = alarm
    return alarms


def alarm_above(scope: Construct, name: str, alarm_name: str, metric: cloudwatch.IMetric, threshold: float,
                topic: sns.ITopic, description: str) -> cloudwatch.Alarm:
    """A datapoint above `threshold` in one period notifies the topic; no data (no run) is not a breach."""
    alarm = metric.create_alarm(
        scope,
        f"Alarm{name}",
        alarm_name=alarm_name,
        alarm_description=description,
        threshold=threshold,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(topic))
    return alarm
