"""Render the one pipeline definition (PIPELINE) as an AWS Step Functions state machine (ASL).

The local runner and the state machine read the same tuple, so stage order, retries and error
handling cannot drift apart. Each Stage becomes one Task state, in order:

| runtime        | on AWS                                              | resource key in `resources` |
| -------------- | --------------------------------------------------- | --------------------------- |
| `spark`        | Glue StartJobRun `.sync` (the stage's glue_script)  | `job_name`, `arguments`     |
| `dbt`          | CodeBuild StartBuild `.sync` (dbt build on Athena)  | `project_name`              |
| `segmentation` | SageMaker CreateProcessingJob `.sync`               | `processing`, `job_prefix`  |
| `python`       | Lambda Invoke                                       | `function_arn`              |

dbt runs in CodeBuild (docs/adr/0007): it needs Python 3.11 for the rfmlake wheel (Glue Python shell
stops at 3.9), it can outlive Lambda's 15 minutes, and it needs no container image to build.

Every Task retries `max_attempts - 1` times with exponential backoff and catches every error into
one failure path: a Pass state naming the failed stage -> the rollback -> the run summary -> an SNS publish
-> a Fail state. A stage with `critical=False` records its error and the run goes on.

A failed run commits nothing (docs/adr/0016): `RecordRunStart`, after the run lease is held and before
the first stage, records every table's pointer and the kept state in the run's folder
(rfmlake.pipeline.rollback.record_run_start); a critical stage's failure goes through `RollBackRun`
(roll_back_run: every table whose pointer moved gets its start pointer back, tables the run created
are dropped) before the failed run's summary, which says what was restored, or that the rollback
failed. Both run on the stage Lambda. A run whose start could not be recorded has committed nothing
and goes straight to the summary.

Every execution records its run summary (`_system/runs/<run_id>/summary.json`, what `rfmlake run`
writes: rfmlake.pipeline.runner.run_report), on success and on failure: after each stage a Pass state
`Finished: <stage>` notes when it ended (`$.stage_finished_at`), and a Task on the stage Lambda
(`RecordRunSummary` after the last stage, `RecordFailedRunSummary` on the failure path) turns those
times, the failed stage and its error into the summary, with what the lake holds
(rfmlake.pipeline.remote.summarize_execution). A summary that cannot be written after a successful
run fails the execution and notifies (the run would otherwise look unfinished); after a failure the
run fails and notifies either way.

`resources` is a plain dict (what infra/ fills in from the deployed constructs):

    {"failure_topic_arn": "arn:aws:sns:...",
     "stages": {"ingest_bronze": {"job_name": "...", "arguments": {"--lake": "s3://..."}},
                "dbt_build": {"project_name": "..."},
                "segmentation": {"job_prefix": "segmentation", "processing": {...CreateProcessingJob fields}},
                "quality_silver": {"function_arn": "arn:aws:lambda:..."}},
     "run_summary_function_arn": "arn:aws:lambda:...",   # the stage Lambda: writes each run's summary
     "run_lease_table": "<DynamoDB table>"}   # optional: one run at a time (rfmlake.pipeline.trigger)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rfmlake.deploy.names import PROCESSING_JOB_PREFIX_MAX, UUID_LENGTH, name_problem
from rfmlake.errors import ConfigError
from rfmlake.pipeline.definition import PIPELINE, Stage

NOTIFY_STATE = "NotifyFailure"
# One run at a time (rfmlake.pipeline.trigger): the first state checks this execution holds the run
# lease, the last ones give it back, on either path.
HOLD_LEASE_STATE = "HoldRunLease"
RELEASE_LEASE_STATE = "ReleaseRunLease"
RELEASE_LEASE_AFTER_FAILURE_STATE = "ReleaseRunLeaseAfterFailure"
NOT_HOLDER_STATE = "NotTheRunLeaseHolder"
LEASE_STATES = (HOLD_LEASE_STATE, RELEASE_LEASE_STATE, RELEASE_LEASE_AFTER_FAILURE_STATE)
FAIL_STATE = "RunFailed"
SUCCEED_STATE = "RunSucceeded"
FAILED_PREFIX = "Failed: "
# The run summary (rfmlake.pipeline.remote.summarize_execution reads what these states record).
FINISHED_PREFIX = "Finished: "
FINISHED_AT = "stage_finished_at"       # $.stage_finished_at.<stage>.at: when the stage's Task ended
RECORD_STATE = "RecordRunSummary"
RECORD_FAILED_STATE = "RecordFailedRunSummary"
RECORD_ERROR_STATE = FAILED_PREFIX + RECORD_STATE
RECORD_STATES = (RECORD_STATE, RECORD_FAILED_STATE)
SUMMARIZE_STEP = "summarize_run"        # the stage Lambda's payload {"step": ...}: write the run summary
# A failed run commits nothing (docs/adr/0016; rfmlake.pipeline.rollback): the run's start pointers are
# recorded before the first stage, and put back on the failure path before the failed run's summary.
RECORD_START_STATE = "RecordRunStart"
ROLL_BACK_STATE = "RollBackRun"
RECORD_START_ERROR_STATE = FAILED_PREFIX + RECORD_START_STATE
RECORD_START_STEP = "record_run_start"
ROLL_BACK_STEP = "roll_back_run"
ROLLBACK_ERROR = "rollback_error"       # $.rollback_error: why RollBackRun failed (the summary says it)
# The Tasks that run a step of the run itself (not a stage) on the stage Lambda.
STEP_STATES = (RECORD_START_STATE, ROLL_BACK_STATE, *RECORD_STATES)
RETRY_INTERVAL_SECONDS = 30
RETRY_BACKOFF_RATE = 2.0
# The run id every stage receives: the execution name (EventBridge and the schedule set a unique one).
RUN_ID_PATH = "$$.Execution.Name"

_REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "spark": ("job_name",),
    "dbt": ("project_name",),
    "segmentation": ("processing",),
    "python": ("function_arn",),
}
# CreateProcessingJob fields the renderer owns (name, per-run environment); the rest come from resources.
_PROCESSING_REQUIRED = ("AppSpecification", "ProcessingResources", "RoleArn")


def render_state_machine(
    pipeline: tuple[Stage, ...] = PIPELINE,
    *,
    resources: Mapping[str, Any],
    comment: str = "rfmlake pipeline (generated from rfmlake.pipeline.definition.PIPELINE)",
) -> dict[str, Any]:
    """The ASL definition of `pipeline` as a dict; raises ConfigError naming a stage whose resource is missing."""
    if not pipeline:
        raise ConfigError("the pipeline has no stages; nothing to render")
    names = [stage.name for stage in pipeline]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"stage names must be unique; repeated: {duplicates}")
    topic_arn = resources.get("failure_topic_arn")
    if not isinstance(topic_arn, str) or not topic_arn:
        raise ConfigError("resources.failure_topic_arn is required: failures notify through SNS")
    stage_resources = resources.get("stages") or {}
    if not isinstance(stage_resources, Mapping):
        raise ConfigError("resources.stages must map stage names to their resources")
    unknown = sorted(set(stage_resources) - set(names))
    if unknown:
        raise ConfigError(f"resources.stages names stages the pipeline does not have: {unknown}")

    summary_function = resources.get("run_summary_function_arn")
    if not isinstance(summary_function, str) or not summary_function:
        raise ConfigError("resources.run_summary_function_arn is required: every execution writes its run "
                          "summary (the stage Lambda), on success and on failure")

    lease_table = resources.get("run_lease_table")
    states: dict[str, Any] = {}
    if lease_table:
        states.update(_lease_states(str(lease_table), first=RECORD_START_STATE))
    states[RECORD_START_STATE] = _step(
        summary_function, RECORD_START_STEP, next_state=pipeline[0].name, error_path="$.error",
        on_error=RECORD_START_ERROR_STATE,
        comment="record every table's pointer and the kept state before the first stage (the rollback's target)")
    states[RECORD_START_ERROR_STATE] = {"Type": "Pass", "Result": "run start", "ResultPath": "$.failed_stage",
                                        "Next": RECORD_FAILED_STATE}
    for index, stage in enumerate(pipeline):
        following = pipeline[index + 1].name if index + 1 < len(pipeline) else RECORD_STATE
        finished = FINISHED_PREFIX + stage.name
        task = _task(stage, _stage_resources(stage, stage_resources))
        task["Retry"] = [_retry(stage)]
        if stage.critical:
            task["Catch"] = [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILED_PREFIX + stage.name}
            ]
            states[FAILED_PREFIX + stage.name] = {
                "Type": "Pass",
                "Result": stage.name,
                "ResultPath": "$.failed_stage",
                "Next": ROLL_BACK_STATE,
            }
        else:  # a non-critical stage's failure is recorded and the run goes on
            task["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": f"$.errors.{stage.name}", "Next": finished}]
        task["ResultPath"] = None  # stages communicate through the lake, not the state payload
        task["Next"] = finished
        states[stage.name] = task
        states[finished] = {
            "Type": "Pass",
            "Comment": "when the stage ended: its seconds in the run summary",
            "Parameters": {"at.$": "$$.State.EnteredTime"},
            "ResultPath": f"$.{FINISHED_AT}.{stage.name}",
            "Next": following,
        }
    states[RECORD_STATE] = _record_summary(summary_function, run_failed=False,
                                           next_state=RELEASE_LEASE_STATE if lease_table else SUCCEED_STATE,
                                           on_error=RECORD_ERROR_STATE)
    states[RECORD_ERROR_STATE] = {"Type": "Pass", "Result": "run summary", "ResultPath": "$.failed_stage",
                                  "Next": NOTIFY_STATE}
    # A rollback that fails is recorded in the summary; the run fails and notifies either way.
    states[ROLL_BACK_STATE] = _step(
        summary_function, ROLL_BACK_STEP, next_state=RECORD_FAILED_STATE, error_path=f"$.{ROLLBACK_ERROR}",
        on_error=RECORD_FAILED_STATE,
        comment="put every table whose pointer moved since RecordRunStart back, drop the tables the run created")
    # The run fails either way: a summary that cannot be written must not hide the failure.
    states[RECORD_FAILED_STATE] = _record_summary(summary_function, run_failed=True, next_state=NOTIFY_STATE,
                                                  on_error=NOTIFY_STATE)
    states[SUCCEED_STATE] = {"Type": "Succeed"}
    states[NOTIFY_STATE] = {
        "Type": "Task",
        "Comment": "tell the on-call topic which stage failed and why",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {
            "TopicArn": topic_arn,
            "Subject": "rfmlake pipeline run failed",
            "Message": {
                "stage.$": "$.failed_stage",
                "error.$": "$.error",
                "execution.$": "$$.Execution.Id",
                "started_at.$": "$$.Execution.StartTime",
            },
        },
        "Retry": [
            {
                "ErrorEquals": ["States.ALL"],
                "IntervalSeconds": 5,
                "MaxAttempts": 3,
                "BackoffRate": RETRY_BACKOFF_RATE,
            }
        ],
        # The run fails either way: a notification that cannot be sent must not hide the failure.
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.notify_error",
                   "Next": RELEASE_LEASE_AFTER_FAILURE_STATE if lease_table else FAIL_STATE}],
        "ResultPath": None,
        "Next": RELEASE_LEASE_AFTER_FAILURE_STATE if lease_table else FAIL_STATE,
    }
    states[FAIL_STATE] = {
        "Type": "Fail",
        "Error": "RfmlakePipelineFailed",
        "Cause": "a pipeline stage failed; see the SNS notification and the failed state's input",
    }
    if lease_table:
        from rfmlake.pipeline.trigger import RUN_TIMEOUT_SECONDS

        # No execution outlives its lease (expires_at = start + this + the start grace).
        return {"Comment": comment, "StartAt": HOLD_LEASE_STATE, "TimeoutSeconds": RUN_TIMEOUT_SECONDS,
                "States": states}
    return {"Comment": comment, "StartAt": RECORD_START_STATE, "States": states}


def _record_summary(function_arn: str, *, run_failed: bool, next_state: str, on_error: str) -> dict[str, Any]:
    """The Task that writes the run summary on the stage Lambda (rfmlake.pipeline.remote.summarize_execution):
    the execution's state (stage end times, the failed stage and its error), its start, and now."""
    return {
        "Type": "Task",
        "Comment": "write the run summary (summary.json): stage status and seconds, quarantine counts"
                   + (", the failed stage and its error" if run_failed else ""),
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": function_arn,
            "Payload": {"step": SUMMARIZE_STEP, "run_id.$": RUN_ID_PATH, "run_failed": run_failed,
                        "started_at.$": "$$.Execution.StartTime", "ended_at.$": "$$.State.EnteredTime",
                        "execution.$": "$"},
        },
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 2,
                   "BackoffRate": RETRY_BACKOFF_RATE}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.summary_error" if run_failed else "$.error",
                   "Next": on_error}],
        "ResultPath": None,
        "Next": next_state,
    }


def _step(function_arn: str, step: str, *, next_state: str, error_path: str, on_error: str,
          comment: str) -> dict[str, Any]:
    """A Task running one step of the run on the stage Lambda (rfmlake.pipeline.remote.handle_event)."""
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload": {"step": step, "run_id.$": RUN_ID_PATH}},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 10, "MaxAttempts": 2,
                   "BackoffRate": RETRY_BACKOFF_RATE}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": error_path, "Next": on_error}],
        "ResultPath": None,
        "Next": next_state,
    }


def _lease_states(table: str, *, first: str) -> dict[str, Any]:
    """HoldRunLease (before the first stage) and the two ReleaseRunLease states (before Succeed and Fail)."""
    from rfmlake.pipeline.trigger import LEASE_ID, LEASE_KEY

    key = {LEASE_KEY: {"S": LEASE_ID}}
    me = {":me": {"S.$": "$$.Execution.Name"}}
    not_holder = "DynamoDB.ConditionalCheckFailedException"

    def release(next_state: str) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Comment": "give the run lease back (only if this execution still holds it)",
            "Resource": "arn:aws:states:::dynamodb:deleteItem",
            "Parameters": {"TableName": table, "Key": key, "ConditionExpression": "execution = :me",
                           "ExpressionAttributeValues": me},
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 3,
                       "BackoffRate": RETRY_BACKOFF_RATE}],
            # Not the holder any more, or DynamoDB unreachable: the next trigger takes an ended holder's lease over.
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.release_error", "Next": next_state}],
            "ResultPath": None,
            "Next": next_state,
        }

    return {
        HOLD_LEASE_STATE: {
            "Type": "Task",
            "Comment": "runs start only through the trigger, which takes the run lease for this execution",
            "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": {"TableName": table, "Key": key, "ConditionExpression": "execution = :me",
                           "UpdateExpression": "SET started_at = :started",
                           "ExpressionAttributeValues": {**me, ":started": {"S.$": "$$.Execution.StartTime"}}},
            "Catch": [{"ErrorEquals": [not_holder], "ResultPath": "$.error", "Next": NOT_HOLDER_STATE},
                      {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": NOT_HOLDER_STATE}],
            "ResultPath": None,
            "Next": first,
        },
        NOT_HOLDER_STATE: {
            "Type": "Fail",
            "Error": "RfmlakeNotTheRunLeaseHolder",
            "Cause": "another run holds the run lease, or this execution was not started by the trigger "
                     "(send a message to the trigger queue to start a run)",
        },
        RELEASE_LEASE_STATE: release(SUCCEED_STATE),
        RELEASE_LEASE_AFTER_FAILURE_STATE: release(FAIL_STATE),
    }


def render_state_machine_json(pipeline: tuple[Stage, ...] = PIPELINE, *, resources: Mapping[str, Any]) -> str:
    """The definition as the JSON string Step Functions takes (stable key order, so diffs are readable)."""
    return json.dumps(render_state_machine(pipeline, resources=resources), indent=2, sort_keys=False)


def task_state_names(definition: Mapping[str, Any]) -> list[str]:
    """The stage Task states of a rendered definition, in execution order (following Next from StartAt)."""
    states = definition["States"]
    order: list[str] = []
    name: str | None = definition["StartAt"]
    seen: set[str] = set()
    while name is not None and name not in seen:
        seen.add(name)
        state = states[name]
        if state["Type"] == "Task" and name != NOTIFY_STATE and name not in (*LEASE_STATES, *STEP_STATES):
            order.append(name)
        name = state.get("Next")
    return order


def _stage_resources(stage: Stage, stage_resources: Mapping[str, Any]) -> Mapping[str, Any]:
    found = stage_resources.get(stage.name)
    required = _REQUIRED_KEYS[stage.runtime]
    if not isinstance(found, Mapping):
        raise ConfigError(
            f"stage {stage.name} ({stage.runtime}) has no AWS resource; resources.stages.{stage.name} "
            f"needs: {', '.join(required)}"
        )
    missing = [key for key in required if not found.get(key)]
    if missing:
        raise ConfigError(f"resources.stages.{stage.name} ({stage.runtime}) is missing: {', '.join(missing)}")
    return found


def _retry(stage: Stage) -> dict[str, Any]:
    if stage.max_attempts < 1:
        raise ConfigError(f"stage {stage.name}: max_attempts must be >= 1, got {stage.max_attempts}")
    return {
        "ErrorEquals": ["States.ALL"],
        "IntervalSeconds": RETRY_INTERVAL_SECONDS,
        "MaxAttempts": stage.max_attempts - 1,  # ASL counts retries after the first attempt
        "BackoffRate": RETRY_BACKOFF_RATE,
        "JitterStrategy": "FULL",
    }


def _task(stage: Stage, found: Mapping[str, Any]) -> dict[str, Any]:
    comment = stage.description
    if stage.runtime == "spark":
        if not stage.glue_script:
            raise ConfigError(f"stage {stage.name} runs on Spark but names no glue_script")
        arguments = {str(k): str(v) for k, v in (found.get("arguments") or {}).items()}
        arguments["--run_id.$"] = RUN_ID_PATH
        return {
            "Type": "Task",
            "Comment": comment,
            "Resource": "arn:aws:states:::glue:startJobRun.sync",
            "Parameters": {"JobName": found["job_name"], "Arguments": arguments},
        }
    if stage.runtime == "dbt":
        return {
            "Type": "Task",
            "Comment": comment,
            "Resource": "arn:aws:states:::codebuild:startBuild.sync",
            "Parameters": {
                "ProjectName": found["project_name"],
                "EnvironmentVariablesOverride": [
                    {"Name": "RFMLAKE_RUN_ID", "Type": "PLAINTEXT", "Value.$": RUN_ID_PATH},
                ],
            },
        }
    if stage.runtime == "segmentation":
        processing = dict(found["processing"])
        missing = [key for key in _PROCESSING_REQUIRED if key not in processing]
        if missing:
            raise ConfigError(f"resources.stages.{stage.name}.processing is missing: {', '.join(missing)}")
        prefix = str(found.get("job_prefix") or stage.name.replace("_", "-"))
        # The job name is "<prefix>-<UUID>" whatever the execution name: it fits by construction.
        problem = name_problem("processing_job", f"{prefix}-{'0' * UUID_LENGTH}")
        if problem or len(prefix) > PROCESSING_JOB_PREFIX_MAX:
            raise ConfigError(
                f"resources.stages.{stage.name}.job_prefix {prefix!r}: letters, digits and hyphens, at most "
                f"{PROCESSING_JOB_PREFIX_MAX} characters (SageMaker job names are <= 63 with the run's UUID)"
            )
        environment = {str(k): str(v) for k, v in (processing.pop("Environment", None) or {}).items()}
        environment["RFMLAKE_RUN_ID.$"] = RUN_ID_PATH
        return {
            "Type": "Task",
            "Comment": comment,
            "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
            "Parameters": {
                "ProcessingJobName.$": f"States.Format('{prefix}-{{}}', States.UUID())",
                **processing,
                "Environment": environment,
            },
        }
    if stage.runtime == "python":
        return {
            "Type": "Task",
            "Comment": comment,
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": found["function_arn"],
                "Payload": {"stage": stage.name, "run_id.$": RUN_ID_PATH, "input.$": "$"},
            },
        }
    raise ConfigError(f"stage {stage.name}: no AWS rendering for runtime {stage.runtime!r}")


__all__ = ["render_state_machine", "render_state_machine_json", "task_state_names"]
