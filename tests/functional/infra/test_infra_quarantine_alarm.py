"""The quarantine spike alarm (deploy.alarms.quarantine_rate_percent -> the failure topic), the Glue
job choosing the CloudWatch publisher, and its role putting metrics into namespace rfmlake only.
cfn-lint and the IAM wildcard check cover these templates in test_infra_synth."""

from __future__ import annotations

import pytest

pytest.importorskip("aws_cdk")

from infra_synth import Synth, resources  # noqa: E402


def test_a_quarantine_spike_alarms_on_the_failure_topic(synth: Synth) -> None:
    stack = synth.platform.orchestration
    template = synth.templates[stack.stack_name]
    environment = synth.platform.environment
    alarms = [a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()]
    (alarm,) = [a for a in alarms if a.get("MetricName") == "QuarantineRate"]
    assert alarm["Namespace"] == "rfmlake" and alarm["Statistic"] == "Maximum"
    assert alarm["Dimensions"] == [{"Name": "Environment", "Value": environment.prefix}]  # what the job publishes
    assert alarm["Threshold"] == environment.deploy.alarms.quarantine_rate_percent == 5
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # no run, no alarm
    topic = stack.get_logical_id(stack.topic.node.default_child)
    assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_the_silver_job_publishes_to_cloudwatch_and_may_only_write_its_namespace(synth: Synth) -> None:
    compute = synth.platform.compute
    template = synth.templates[compute.stack_name]
    jobs = {j["Properties"]["Name"]: j["Properties"] for j in resources(template, "AWS::Glue::Job").values()}
    assert jobs["rfmlake-dev-conform-silver"]["DefaultArguments"]["--metrics"] == "cloudwatch"
    role = compute.get_logical_id(compute.glue_role.node.default_child)
    (policy,) = [p["Properties"]["PolicyDocument"] for p in resources(template, "AWS::IAM::Policy").values()
                 if p["Properties"]["Roles"] == [{"Ref": role}]]
    puts = [s for s in policy["Statement"] if "cloudwatch:PutMetricData" in str(s["Action"])]
    namespaces = sorted(s["Condition"]["StringEquals"]["cloudwatch:namespace"] for s in puts)
    assert namespaces == ["Glue", "rfmlake"]  # Glue's own job metrics, and the pipeline's
    assert all(s["Action"] == "cloudwatch:PutMetricData" and s["Resource"] == "*" for s in puts)
    assert "PipelineMetricsAnyResource" in {s["Sid"] for s in puts}
