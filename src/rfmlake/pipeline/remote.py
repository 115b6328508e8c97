"""Run one pipeline stage outside the local runner: what the AWS stage Lambda (python stages) and
the SageMaker processing container (segmentation-runtime stages without their own entry script)
execute for a Step Functions Task. The stage is looked up in PIPELINE by name, so the state machine
and `rfmlake run` call the same function. The stage Lambda also writes each execution's run summary
(summarize_execution), with the runner's code, where `rfmlake run` writes it.

Where the lake lives comes from the environment: RFMLAKE_LAKE, RFMLAKE_LANDING, RFMLAKE_CONFIG.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rfmlake.errors import ConfigError, RfmlakeError
from rfmlake.pipeline.definition import PIPELINE, Stage
from rfmlake.pipeline.stepfunctions import (
    FINISHED_AT,
    RECORD_START_STEP,
    ROLL_BACK_STEP,
    ROLLBACK_ERROR,
    SUMMARIZE_STEP,
)

if TYPE_CHECKING:
    from rfmlake.pipeline.context import RunContext
    from rfmlake.pipeline.runner import StageRun

ERROR_MESSAGE_CHARS = 500  # as the local runner keeps an unexpected error: one line, bounded


def find_stage(name: object, pipeline: tuple[Stage, ...] = PIPELINE) -> Stage:
    for stage in pipeline:
        if stage.name == name:
            return stage
    raise ConfigError(f"unknown pipeline stage {name!r}; stages: {', '.join(s.name for s in pipeline)}")


def run_stage(name: str, *, lake: str, landing: str | None = None, config: str | None = None,
              run_id: str | None = None) -> dict[str, Any]:
    """Run stage `name` against the lake; returns its summary. Raises RfmlakeError on bad input."""
    from rfmlake.errors import PipelineError
    from rfmlake.ingest.jobs import JobArgs, build_context
    from rfmlake.lake.locks import lake_lock

    stage = find_stage(name)
    ctx = build_context(JobArgs(landing, lake, config, run_id))
    # One writer per lake: a stage never interleaves with an erasure or a sync (rfmlake.lake.locks).
    with lake_lock(ctx.lake, PipelineError(f"another rfmlake stage, sync or erasure is using the lake at {ctx.lake}"),
                   owner=ctx.run_id):
        return _run_locked(stage, ctx)


def _run_locked(stage: Stage, ctx: RunContext) -> dict[str, Any]:
    from rfmlake.lake.workspace import workspace

    if ctx.lake.is_local or stage.runtime == "spark":  # Spark reads and writes s3:// itself (Glue)
        return {"stage": stage.name, "run_id": ctx.run_id, "summary": _run(stage, ctx)}
    if stage.in_place:  # SQL over the s3:// files (the quality checks): nothing is copied to /tmp
        return {"stage": stage.name, "run_id": ctx.run_id, "summary": _run(stage, ctx),
                "lake": {"read_in_place": True}}
    # One-process stages work on a local copy of what they read; it is published when they succeed.
    # dbt on Athena reads silver and builds gold in Athena itself: its workspace holds only its reports.
    reads = () if stage.runtime == "dbt" else stage.reads
    with workspace(ctx.lake, reads=reads, writes=stage.writes, exports=stage.exports, in_place=stage.reads_in_place,
                   state=(*stage.state, f"runs/{ctx.run_id}")) as (local, sync):
        summary = _run(stage, dataclasses.replace(ctx, lake=local, workspace_of=ctx.lake.location))
    return {"stage": stage.name, "run_id": ctx.run_id, "summary": summary,
            "lake": {"pulled": sync.pulled, "committed": sync.pushed, "state_files_written": sync.state_files_up,
                     "export_files_written": sync.export_files_up}}


def _run(stage: Stage, ctx: RunContext) -> Any:
    from rfmlake.pipeline.runner import _jsonable, _resolve
    from rfmlake.pipeline.stages import RunState

    state = RunState()
    try:
        return _jsonable(_resolve(stage.entry)(ctx, state))
    finally:
        state.close()


def summarize_execution(event: Mapping[str, Any], *, lake: str, landing: str | None = None,
                        config: str | None = None, pipeline: tuple[Stage, ...] = PIPELINE) -> dict[str, Any]:
    """Write the run summary of a Step Functions execution: the payload of its RecordRunSummary or
    RecordFailedRunSummary state (rfmlake.pipeline.stepfunctions) gives each stage's end time, the
    failed stage and its error; the lake gives the rest (tables, quarantine counts, reconciliation,
    segments), read where it lies by the runner's summarize_lake (DuckDB over S3: row counts from the
    Parquet footers, the quarantine and segment counts from a few columns; nothing is copied to /tmp)."""
    from rfmlake.ingest.jobs import JobArgs, build_context
    from rfmlake.pipeline.context import check_run_id
    from rfmlake.pipeline.runner import run_report, summarize_lake, write_run_report

    run_id, execution = check_run_id(event.get("run_id"), "the run summary"), event.get("execution")
    if not isinstance(execution, Mapping):
        raise ConfigError("the run summary event needs the execution's state as 'execution' (an object)")
    from rfmlake.pipeline.rollback import end_run, note_rollback_failed, rollback_outcome

    started_at, ended_at = _timestamp(event, "started_at"), _timestamp(event, "ended_at")
    runs, error = execution_stages(execution, started_at, ended_at, run_failed=bool(event.get("run_failed")),
                                   pipeline=pipeline)
    ctx = build_context(JobArgs(landing, lake, config, run_id))
    ctx.started_at = started_at
    rollback = None
    if error is None:
        # Every stage succeeded: no rollback can be wanted, even if this summary cannot be written
        # (the next run would otherwise roll back a run that only lacks its summary).
        end_run(ctx.lake, run_id)
    else:
        rollback_error = execution.get(ROLLBACK_ERROR)
        rollback = rollback_outcome(ctx.lake, run_id, _error_message(rollback_error) if rollback_error else None)
        if rollback_error:
            # The marker stays, saying so: no later run starts over this run's writes until an
            # operator finishes the rollback (rfmlake.pipeline.rollback.UnfinishedRunError).
            note_rollback_failed(ctx.lake, run_id, rollback["error"])
            error = f"{error} (the rollback failed too, so tables may show this run's earlier stages: " \
                    f"{rollback['error']})"
    try:
        summary = summarize_lake(ctx, runs, (ended_at - started_at).total_seconds())
    except Exception:
        if error is None:
            raise  # a run that succeeded gets its whole summary, or the state machine says it has none
        # A failed run's summary still says which stage failed and why.
        logging.getLogger(__name__).exception("could not read the lake for the summary of failed run %s", run_id)
        summary = None
    report = run_report(run_id, runs, summary, error)
    if rollback is not None:
        report["rollback"] = rollback
    write_run_report(ctx.lake, run_id, report)
    if error is not None and not execution.get(ROLLBACK_ERROR):
        # The failed run is over (rolled back, or it failed before its start was recorded): its start
        # versions need no keeping. After a failed rollback they stay kept for an operator to finish it.
        end_run(ctx.lake, run_id)
    return {"step": SUMMARIZE_STEP, "run_id": run_id, "status": "failed" if error else "succeeded",
            "stages": [{"name": r.name, "status": r.status, "seconds": r.seconds} for r in runs]}


# What Step Functions sends EventBridge when an execution ends (the rule in infra/ lets through only
# those that end without the state machine's own summary state: stopped by hand, timed out).
STATUS_CHANGE_SOURCE = "aws.states"
STATUS_CHANGE_TYPE = "Step Functions Execution Status Change"
STOPPED_STATUSES = {"ABORTED": "stopped", "TIMED_OUT": "timed out"}


def summarize_stopped_execution(event: Mapping[str, Any], *, lake: str, config: str | None = None
                                ) -> dict[str, Any]:
    """The summary of an execution that ended without reaching its summary state: stopped by hand
    (StopExecution: ABORTED) or timed out, from the status-change event EventBridge delivers. Its
    Runs page entry then says so instead of "running", and no schedule carries from it. The stages
    it committed stay until the next run's RecordRunStart rolls them back (rfmlake.pipeline.rollback):
    a stage still finishing after the stop holds the lake's lease for this run. An execution that
    has a summary (stopped after writing it) keeps it."""
    from rfmlake.lake import open_lake
    from rfmlake.pipeline.context import check_run_id
    from rfmlake.pipeline.runner import run_report, write_run_report
    from rfmlake.reporting.quality import RUN_SUMMARY
    from rfmlake.settings import load_settings

    detail = event.get("detail")
    if not isinstance(detail, Mapping) or detail.get("status") not in STOPPED_STATUSES:
        raise ConfigError(f"not a status change of a stopped or timed-out execution: {STATUS_CHANGE_TYPE} with "
                          f"detail.status one of {', '.join(STOPPED_STATUSES)} expected")
    run_id = check_run_id(detail.get("name"), "the summary of a stopped execution")
    opened = open_lake(lake, load_settings(config))
    if opened.read_system("runs", run_id, RUN_SUMMARY) is not None:
        return {"step": "summarize_stopped_run", "run_id": run_id, "status": "kept: the run has its summary"}
    started_at, stopped_at = _epoch_ms(detail, "startDate"), _epoch_ms(detail, "stopDate")
    outcome = STOPPED_STATUSES[str(detail["status"])]
    error = (f"the execution was {outcome} ({detail['status']}) at {stopped_at.isoformat()} before its summary; "
             "the stages it committed are rolled back when the next run starts")
    report = run_report(run_id, [], None, error)
    report.update({"stopped": {"status": detail["status"], "stopped_at": stopped_at.isoformat()},
                   "started_at": started_at.isoformat(),
                   "seconds": round(max((stopped_at - started_at).total_seconds(), 0.0), 3)})
    write_run_report(opened, run_id, report)
    return {"step": "summarize_stopped_run", "run_id": run_id, "status": outcome}


def _epoch_ms(values: Mapping[str, Any], key: str) -> datetime:
    """A time as EventBridge's Step Functions events give it: milliseconds since the epoch."""
    from datetime import UTC

    value = values.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigError(f"detail.{key} {value!r} is not a time in epoch milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


def execution_stages(execution: Mapping[str, Any], started_at: datetime, ended_at: datetime, *, run_failed: bool,
                     pipeline: tuple[Stage, ...] = PIPELINE) -> tuple[list[StageRun], str | None]:
    """(the stages that ran, with status and seconds; the run's error) from an execution's state. A
    stage ran from the previous stage's end (the first from the execution's start) to its own; the
    failed stage until the summary state was entered."""
    from rfmlake.pipeline.runner import StageRun

    finished = execution.get(FINISHED_AT) if isinstance(execution.get(FINISHED_AT), Mapping) else {}
    errors = execution.get("errors") if isinstance(execution.get("errors"), Mapping) else {}
    failed = execution.get("failed_stage") if run_failed else None
    error = _error_message(execution.get("error")) if run_failed else None
    runs: list[StageRun] = []
    previous = started_at
    for stage in pipeline:
        mark = finished.get(stage.name)
        if isinstance(mark, Mapping) and mark.get("at"):
            end = _timestamp(mark, "at")
            stage_error = errors.get(stage.name)  # a non-critical stage's caught error
            runs.append(StageRun(stage.name, "failed" if stage_error else "succeeded", _seconds(previous, end),
                                 error=_error_message(stage_error) if stage_error else None))
            previous = end
            continue
        if stage.name == failed:
            runs.append(StageRun(stage.name, "failed", _seconds(previous, ended_at), error=error))
        break
    if run_failed and not any(r.status == "failed" for r in runs):
        error = f"{failed or 'the run'} failed: {error}"  # not a pipeline stage (the summary itself, the lease)
    return runs, error


def _seconds(start: datetime, end: datetime) -> float:
    return round(max((end - start).total_seconds(), 0.0), 3)


def _timestamp(values: Mapping[str, Any], key: str) -> datetime:
    """An ISO 8601 time as Step Functions writes it ($$.Execution.StartTime, $$.State.EnteredTime)."""
    value = values.get(key)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{key} {value!r} is not an ISO 8601 time") from None


def _error_message(error: Any) -> str:
    """One line from a caught Step Functions error ({"Error", "Cause"}): the message inside the cause
    where the service puts one (Lambda errorMessage, Glue ErrorMessage, SageMaker FailureReason)."""
    if not isinstance(error, Mapping):
        return str(error or "unknown error")[:ERROR_MESSAGE_CHARS]
    name, cause = str(error.get("Error") or "Error"), error.get("Cause")
    detail = cause
    try:
        parsed = json.loads(cause) if isinstance(cause, str) else None
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping):
        detail = next((parsed[k] for k in ("errorMessage", "ErrorMessage", "FailureReason") if parsed.get(k)), cause)
    text = f"{name}: {detail}" if detail else name
    return text.splitlines()[0][:ERROR_MESSAGE_CHARS] if text.strip() else name


def run_step(step: str, run_id: Any, *, lake: str, config: str | None = None) -> dict[str, Any]:
    """RecordRunStart or RollBackRun (rfmlake.pipeline.rollback) on the lake the settings open."""
    from rfmlake.lake import open_lake
    from rfmlake.pipeline.rollback import record_run_start, roll_back_run
    from rfmlake.settings import load_settings

    opened = open_lake(lake, load_settings(config))
    return record_run_start(opened, run_id) if step == RECORD_START_STEP else roll_back_run(opened, run_id)


def handle_event(event: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Lambda payload from the state machine: {"stage": ..., "run_id": ...}, {"step": "summarize_run", ...}
    (summarize_execution), or {"step": "record_run_start" | "roll_back_run", "run_id": ...} (run_step);
    or EventBridge's status change of an execution stopped or timed out (summarize_stopped_execution)."""
    env = os.environ if env is None else env
    if not isinstance(event, Mapping):
        raise ConfigError("the stage event must be an object")
    lake = env.get("RFMLAKE_LAKE")
    if not lake:
        raise ConfigError("RFMLAKE_LAKE is not set: the stage function needs the lake location")
    if event.get("source") == STATUS_CHANGE_SOURCE and event.get("detail-type") == STATUS_CHANGE_TYPE:
        return summarize_stopped_execution(event, lake=lake, config=env.get("RFMLAKE_CONFIG"))
    if event.get("step") == SUMMARIZE_STEP:
        return summarize_execution(event, lake=lake, landing=env.get("RFMLAKE_LANDING"),
                                   config=env.get("RFMLAKE_CONFIG"))
    if event.get("step") in (RECORD_START_STEP, ROLL_BACK_STEP):
        return run_step(str(event["step"]), event.get("run_id"), lake=lake, config=env.get("RFMLAKE_CONFIG"))
    if not isinstance(event.get("stage"), str):
        raise ConfigError("the stage event must be an object with a string 'stage' (or a 'step': "
                          f"{SUMMARIZE_STEP}, {RECORD_START_STEP}, {ROLL_BACK_STEP})")
    run_id = event.get("run_id")
    return run_stage(event["stage"], lake=lake, landing=env.get("RFMLAKE_LANDING"), config=env.get("RFMLAKE_CONFIG"),
                     run_id=run_id if isinstance(run_id, str) else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one rfmlake pipeline stage")
    parser.add_argument("--stage", required=True)
    parser.add_argument("--lake", default=os.environ.get("RFMLAKE_LAKE"))
    parser.add_argument("--landing", default=os.environ.get("RFMLAKE_LANDING"))
    parser.add_argument("--config", default=os.environ.get("RFMLAKE_CONFIG"))
    parser.add_argument("--run-id", default=os.environ.get("RFMLAKE_RUN_ID"))
    args = parser.parse_args(argv)
    try:
        if not args.lake:
            raise ConfigError("--lake (or RFMLAKE_LAKE) is required")
        result = run_stage(args.stage, lake=args.lake, landing=args.landing, config=args.config, run_id=args.run_id)
    except RfmlakeError as exc:
        print(f"stage failed: {exc}", file=sys.stderr)
        return 2
    print(result["summary"])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
