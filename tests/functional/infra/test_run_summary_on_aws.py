"""The run summary on AWS: every environment's synthesized state machine writes it on success and on
failure; the stage Lambda of the synthesized app, invoked with the payload the state machine hands it
(walked through the dev definition: tests/state_machine_walk.py), writes `summary.json` on an S3 lake
served by moto; the app's Runs page reads it back with the run's status, stage seconds and quarantine
counts; every call the function made is allowed by its synthesized role; and the stages on a schedule
(recommendations' evaluation, customer value's refit) find the last successful run through it, with
the calls their role allows."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from activation_lakes import round_robin, write_rfm
from app_lakes import write_ingest_results
from aws_calls import assert_role_allows, recorded
from infra_synth import Synth
from infra_synth import deployed_stage_function as stage_function
from rfmlake.app.runs import load_run, recent_runs
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.remote import run_stage
from rfmlake.pipeline.trigger import execution_name
from rfmlake.recommend.job import REPORT_FILE, carried_evaluation, evaluation_parameters
from rfmlake.reporting.quality import VALUE_REPORT
from rfmlake.settings import load_settings
from state_machine_walk import assert_summary_on_both_paths, walk
from value_lakes import write_simulated_gold

STARTED = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SECONDS = {stage.name: 5.0 + index for index, stage in enumerate(PIPELINE)}
QUARANTINED = {"orders": {"bad_type": 3, "missing_key": 1}, "customers": {"duplicate": 2}}
SAGEMAKER_FAILURE = {"Error": "States.TaskFailed",
                     "Cause": json.dumps({"ProcessingJobStatus": "Failed", "FailureReason": "AlgorithmError: k < 2"})}


def test_every_environment_s_state_machine_writes_the_run_summary_on_both_paths(synth_env: Synth) -> None:
    assert_summary_on_both_paths(synth_env.platform.orchestration.definition, PIPELINE)


def deployed_stage_function(synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Lake, dict]:
    """A lake on moto S3 holding a quarantine, a reconciliation and gold.customer_rfm; the stage
    Lambda's handler with the environment the compute stack gives it."""
    handler, lake, buckets = stage_function(synth, aws, monkeypatch, module_name="pipeline_stage_handler_summary")
    write_ingest_results(lake, QUARANTINED)
    write_rfm(lake, round_robin(8), as_of=date(2026, 11, 30))
    return handler, lake, buckets


def execute(synth: Synth, handler: Any, run_id: str, started_at: datetime, fail: str | None = None) -> None:
    """One execution of the dev state machine whose summary state invokes the stage Lambda's handler."""
    walked = walk(synth.platform.orchestration.definition, execution_name=run_id, started_at=started_at,
                  seconds=SECONDS, fail=(fail, SAGEMAKER_FAILURE) if fail else None,
                  invoke=lambda payload: handler(payload, None))
    assert walked.end == ("RunFailed" if fail else "RunSucceeded")


def test_the_stage_function_writes_the_summary_the_runs_page_reads(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    handler, lake, buckets = deployed_stage_function(synth, aws, monkeypatch)
    succeeded = execution_name(["s3://dev-landing/orders/orders.csv"], STARTED)
    failed = execution_name(["s3://dev-landing/orders/orders-2.csv"], STARTED)
    compute = synth.platform.compute
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        execute(synth, handler, succeeded, STARTED)
    calls = assert_role_allows(synth, compute, compute.stage_function_role, requests, buckets=buckets,
                               source="stage function: run summary")
    assert {"s3:PutObject", "glue:GetTables"} <= {c.action for c in calls}
    later = STARTED + timedelta(hours=2)
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        execute(synth, handler, failed, later, fail="segmentation")
    assert_role_allows(synth, compute, compute.stage_function_role, requests, buckets=buckets,
                       source="stage function: failed run summary")

    names = [stage.name for stage in PIPELINE]
    ok = load_run(lake, succeeded)
    assert ok is not None and ok.status == "succeeded", ok
    assert [(s["name"], s["status"], s["seconds"]) for s in ok.stages] == [
        (name, "succeeded", SECONDS[name]) for name in names]
    assert ok.seconds == sum(SECONDS.values()) and ok.started_at == STARTED.isoformat()
    assert ok.quarantine == QUARANTINED and ok.quarantined == 6
    assert ok.quarantine_by_reason() == [("bad_type", 3), ("duplicate", 2), ("missing_key", 1)]
    assert (ok.reconciliation_ok, ok.files_ingested, ok.as_of, ok.error) == (True, 2, "2026-11-30", None)

    bad = load_run(lake, failed)
    until = names.index("segmentation")
    assert bad is not None and bad.status == "failed", bad
    assert [(s["name"], s["status"], s["seconds"]) for s in bad.stages] == [
        *((name, "succeeded", SECONDS[name]) for name in names[:until]), ("segmentation", "failed", SECONDS["segmentation"])]
    assert bad.stages[-1]["error"] == bad.error == "States.TaskFailed: AlgorithmError: k < 2"
    assert bad.quarantine == QUARANTINED and bad.started_at == later.isoformat()
    # Both ran on one day: the runs list orders them by the start their summaries record.
    assert [(r.run_id, r.status) for r in recent_runs(lake)] == [(failed, "failed"), (succeeded, "succeeded")]


def test_a_scheduled_stage_on_aws_carries_the_last_successful_runs_evaluation(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """recommendations in its workspace (rfmlake.pipeline.remote.run_stage: a local copy of the S3 lake,
    workspace_of = the lake) finds the latest earlier run that succeeded, by the summaries the state
    machine wrote: not a later failed run, nor a run without a summary (still running, or stopped)."""
    handler, lake, buckets = deployed_stage_function(synth, aws, monkeypatch)
    settings = load_settings(overrides={"prefix": synth.platform.environment.prefix})
    assert settings.recommendations.evaluate_every_days == 7
    succeeded = execution_name(["s3://dev-landing/a.csv"], STARTED)
    failed = execution_name(["s3://dev-landing/b.csv"], STARTED + timedelta(days=1))
    unfinished = execution_name(["s3://dev-landing/c.csv"], STARTED + timedelta(days=2))
    execute(synth, handler, succeeded, STARTED)
    execute(synth, handler, failed, STARTED + timedelta(days=1), fail="recommendations")
    parameters = {**evaluation_parameters(settings.recommendations), "evaluate_every_days": 7}
    for run_id, day in ((succeeded, 1), (failed, 2), (unfinished, 3)):
        report = {"as_of_date": f"2026-12-0{day}", "parameters": parameters,
                  "evaluation": {"metrics": {"hit_rate": day / 10}}}
        lake.write_system(json.dumps(report).encode(), "runs", run_id, REPORT_FILE)

    now = execution_name(["s3://dev-landing/d.csv"], STARTED + timedelta(days=3))
    workspace = RunContext(landing_dir="s3://dev-landing/", lake=Lake(tmp_path / "workspace"), settings=settings,
                           run_id=now, workspace_of=lake.location)
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        carried = carried_evaluation(workspace, date(2026, 12, 4))
    compute = synth.platform.compute  # the stage runs on the processing jobs' role
    assert_role_allows(synth, compute, compute.sagemaker_role, requests, buckets=buckets,
                       source="recommendations: the last evaluation")
    assert carried is not None
    assert (carried.run_id, carried.evaluation["metrics"]) == (succeeded, {"hit_rate": 0.1})
    assert carried_evaluation(workspace, date(2026, 12, 8)) is None  # 7 days on: evaluate again


def test_customer_value_on_aws_predicts_with_the_model_of_the_last_run_with_a_successful_summary(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The customer_value stage as its processing job runs it (rfmlake.pipeline.remote.run_stage: a
    workspace copy of the S3 lake, its models pulled and pushed back), three times on one as_of: the
    second run fits again (the first has no summary yet: still running, as far as anyone can tell);
    once the state machine wrote the first run's summary, the third predicts with the first's model."""
    handler, lake, _ = deployed_stage_function(synth, aws, monkeypatch)
    write_simulated_gold(lake, n=1500, seed=2, bgnbd=(0.9, 30.0, 1.5, 4.0), gamma_gamma=(5.0, 4.0, 20.0),
                         max_first_days=700, zero_value_orders=5)
    location, config = os.environ["RFMLAKE_LAKE"], os.environ["RFMLAKE_CONFIG"]

    def run_value(run_id: str) -> dict[str, Any]:
        run_stage("customer_value", lake=location, config=config, run_id=run_id)
        return json.loads(lake.read_system("runs", run_id, VALUE_REPORT))

    first, second, third = (execution_name([f"s3://dev-landing/{n}.csv"], STARTED + timedelta(days=n))
                            for n in range(3))
    fitted = run_value(first)
    assert fitted["status"] == "fitted" and "model_from" not in fitted
    refitted = run_value(second)
    assert refitted["status"] == "fitted" and "model_from" not in refitted
    execute(synth, handler, first, STARTED)  # the first run's execution ends: its summary
    carried = run_value(third)
    assert carried["model_from"] == {"run_id": first, "as_of_date": fitted["as_of_date"]}
    assert carried["model_version"] == fitted["model_version"]


def test_an_execution_stopped_by_hand_is_shown_stopped_not_running(
        synth: Synth, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """StopExecution (moto's Step Functions) ends an execution before its summary state: the rule the
    orchestration stack synthesizes matches its status change (EventBridge's TestEventPattern) and
    invokes the stage function, which writes the summary the Runs page reads as "stopped" (a run
    with a summary keeps it); every call it made is allowed by its synthesized role."""
    from infra_synth import resources
    from rfmlake.reporting.quality import summary_succeeded

    handler, lake, buckets = deployed_stage_function(synth, aws, monkeypatch)
    template = synth.templates[synth.platform.orchestration.stack_name]
    (rule,) = [r for r in resources(template, "AWS::Events::Rule").values()
               if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]]
    (target,) = rule["Properties"]["Targets"]
    function = synth.platform.compute.stage_function
    assert json.dumps(target["Arn"]).count("StageFunction") and "Input" not in target, target
    assert any(p["Properties"]["Principal"] == "events.amazonaws.com" and
               "StageFunction" in json.dumps(p["Properties"]["FunctionName"])
               for p in resources(template, "AWS::Lambda::Permission").values()), function

    sfn = aws.client("stepfunctions")
    machine = sfn.create_state_machine(
        name="dev-pipeline", roleArn="arn:aws:iam::123456789012:role/dev-pipeline",
        definition=json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 3600, "End": True}}}),
    )["stateMachineArn"]
    name = "manual-2026-12-07"  # started in the console by an operator, then stopped there
    execution = sfn.start_execution(stateMachineArn=machine, name=name)["executionArn"]
    sfn.stop_execution(executionArn=execution, cause="operator stopped the run")
    described = sfn.describe_execution(executionArn=execution)
    assert described["status"] == "ABORTED"
    detail = {"executionArn": execution, "stateMachineArn": machine, "name": name, "status": described["status"],
              "startDate": int(described["startDate"].timestamp() * 1000),
              "stopDate": int(described["stopDate"].timestamp() * 1000), "input": "{}", "output": None}
    # The rule's pattern on moto's EventBridge, with an SQS target to see what it lets through and how
    # EventBridge delivers it (moto has no TestEventPattern).
    pattern = json.loads(json.dumps(rule["Properties"]["EventPattern"]).replace(
        json.dumps(rule["Properties"]["EventPattern"]["detail"]["stateMachineArn"][0]), json.dumps(machine)))
    events, sqs = aws.client("events"), aws.client("sqs")
    queue = sqs.create_queue(QueueName="stopped-runs")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="stopped-runs", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="stopped-runs", Targets=[{"Id": "probe", "Arn": queue_arn}])
    for status in ("SUCCEEDED", "FAILED", "RUNNING", described["status"]):
        events.put_events(Entries=[{"Source": "aws.states", "DetailType": "Step Functions Execution Status Change",
                                    "Resources": [execution], "Detail": json.dumps({**detail, "status": status})}])
    delivered = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert len(delivered) == 1, delivered  # only the stopped one
    event = json.loads(delivered[0]["Body"])
    assert event["detail"]["status"] == "ABORTED"

    assert load_run(lake, name) is None
    compute = synth.platform.compute
    with recorded(os.environ["AWS_ENDPOINT_URL"]) as requests:
        result = handler(event, None)
    assert result["status"] == "stopped"
    assert_role_allows(synth, compute, compute.stage_function_role, requests, buckets=buckets,
                       source="stage function: stopped run summary")
    run = load_run(lake, name)
    assert run is not None and run.status == "stopped", run
    assert run.error.startswith("the execution was stopped (ABORTED) at ") and "next run" in run.error
    assert run.started_at == described["startDate"].astimezone(UTC).isoformat()
    assert [r.run_id for r in recent_runs(lake)] == [name]
    assert not summary_succeeded(json.loads(lake.read_system("runs", name, "summary.json")))  # no schedule carries

    # stopped after its summary was written (ReleaseRunLease): the summary stays
    summarized = execution_name(["s3://dev-landing/orders/orders-9.csv"], STARTED)
    execute(synth, handler, summarized, STARTED)
    kept = handler({**event, "detail": {**event["detail"], "name": summarized}}, None)
    assert kept["status"].startswith("kept") and load_run(lake, summarized).status == "succeeded"
    timed_out = handler({**event, "detail": {**event["detail"], "name": "manual-2", "status": "TIMED_OUT"}}, None)
    assert timed_out["status"] == "timed out" and load_run(lake, "manual-2").status == "timed out"
