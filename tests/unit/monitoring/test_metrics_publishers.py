"""Publisher choice by configuration, and the CloudWatch adapter's requests (botocore Stubber: the
parameters are validated against botocore's PutMetricData model, no network)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from rfmlake.errors import MetricsError
from rfmlake.monitoring import (
    PUT_METRIC_DATA_MAX,
    CloudWatchMetricsPublisher,
    LocalMetricsPublisher,
    MetricDatum,
    metrics_publisher,
)


def test_publisher_from_argument_then_environment_then_local() -> None:
    assert isinstance(metrics_publisher(env={}), LocalMetricsPublisher)
    assert isinstance(metrics_publisher(env={"RFMLAKE_METRICS": "cloudwatch"}), CloudWatchMetricsPublisher)
    assert isinstance(metrics_publisher("local", env={"RFMLAKE_METRICS": "cloudwatch"}), LocalMetricsPublisher)
    with pytest.raises(MetricsError, match="unknown metrics publisher 'statsd'.*local, cloudwatch"):
        metrics_publisher(env={"RFMLAKE_METRICS": "statsd"})


def _publisher(max_per_call: int) -> tuple[CloudWatchMetricsPublisher, Stubber]:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="eu-west-1")
    publisher = CloudWatchMetricsPublisher(boto3_session=session, max_per_call=max_per_call)
    return publisher, Stubber(publisher.client)


def test_cloudwatch_publishes_in_chunks_within_the_limit() -> None:
    data = [MetricDatum("RowsIn", i, "Count", (("Environment", "e"), ("Entity", f"t{i}"))) for i in range(5)]
    publisher, stubber = _publisher(max_per_call=2)
    for entities in (["t0", "t1"], ["t2", "t3"], ["t4"]):
        entries = [{"MetricName": "RowsIn", "Value": float(e[1:]), "Unit": "Count", "Timestamp": ANY,
                    "Dimensions": [{"Name": "Environment", "Value": "e"}, {"Name": "Entity", "Value": e}]}
                   for e in entities]
        stubber.add_response("put_metric_data", {}, {"Namespace": "rfmlake", "MetricData": entries})
    with stubber:
        publisher.publish(data)
        stubber.assert_no_pending_responses()


def test_the_chunk_limit_is_botocores() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricData")
    documented = model.input_shape.members["MetricData"].documentation
    assert f"no more than {PUT_METRIC_DATA_MAX} metrics per call" in documented


def test_cloudwatch_request_shape() -> None:
    publisher, stubber = _publisher(max_per_call=PUT_METRIC_DATA_MAX)
    expected = {"Namespace": "rfmlake", "MetricData": [{
        "MetricName": "QuarantineRate", "Value": 7.5, "Unit": "Percent", "Timestamp": ANY,
        "Dimensions": [{"Name": "Environment", "Value": "rfmlake_dev"}]}]}
    stubber.add_response("put_metric_data", {}, expected)
    with stubber:
        publisher.publish([MetricDatum("QuarantineRate", 7.5, "Percent", (("Environment", "rfmlake_dev"),))])


def test_cloudwatch_errors_and_bad_input_are_metrics_errors() -> None:
    publisher, stubber = _publisher(max_per_call=10)
    stubber.add_client_error("put_metric_data", "AccessDenied", "not authorized", 403)
    with stubber, pytest.raises(MetricsError, match="PutMetricData.*AccessDenied"):
        publisher.publish([MetricDatum("RowsIn", 1, "Count")])
    with pytest.raises(MetricsError, match="not a finite number"):
        publisher.publish([MetricDatum("QuarantineRate", float("nan"), "Percent")])
    with pytest.raises(MetricsError, match="dimension 'Entity'=''"):
        publisher.publish([MetricDatum("RowsIn", 1, "Count", (("Entity", ""),))])
    with pytest.raises(MetricsError, match="max_per_call must be 1-1000"):
        CloudWatchMetricsPublisher(max_per_call=PUT_METRIC_DATA_MAX + 1)
    with pytest.raises(MetricsError, match="namespace 'AWS/Glue'"):
        CloudWatchMetricsPublisher("AWS/Glue")


def test_the_glue_job_argument_names_the_publisher() -> None:
    from rfmlake.ingest.jobs import parse_job_args

    args = parse_job_args(["job.py", "--lake", "/k", "--metrics", "cloudwatch", "--JOB_NAME", "x"], require_landing=False)
    assert args.metrics == "cloudwatch"
    assert parse_job_args(["job.py", "--lake", "/k"], require_landing=False).metrics is None
