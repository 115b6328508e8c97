"""Walk one execution of a rendered state machine (rfmlake.pipeline.stepfunctions) the way Step
Functions moves data through it: Next and Catch transitions, Pass states' Result and Parameters,
ResultPath, and Task Parameters filled from the state and the context object. Step Functions has no
local emulator here; this follows the JSONPath subset the renderer uses and refuses anything else,
so a definition that passes data some other way fails the walk instead of passing untested.

Stage Tasks take the seconds the caller gives them (or fail with the caller's error); the Lambda
Tasks that run the run's own steps (record its start, roll it back, write its summary) call the
caller's `invoke` with their payload, as Step Functions would call the stage Lambda; an exception
from `invoke` fails that Task as a Lambda error does (Error: the exception's type, Cause: the Lambda
error JSON) and follows its Catch, after its retries."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rfmlake.pipeline.stepfunctions import LEASE_STATES, NOTIFY_STATE, RECORD_STATES, STEP_STATES

MAX_STEPS = 500


@dataclass
class Walk:
    visited: list[str] = field(default_factory=list)
    payloads: dict[str, dict[str, Any]] = field(default_factory=dict)  # record state -> its Lambda payload
    results: dict[str, Any] = field(default_factory=dict)  # record state -> what invoke returned
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # step state -> the error it caught
    end: str = ""          # the Succeed or Fail state reached
    data: Any = None       # the state data at the end


def sfn_time(moment: datetime) -> str:
    """A time as Step Functions writes it in the context object: 2026-12-01T03:00:00.000Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def walk(definition: Mapping[str, Any], *, execution_name: str, started_at: datetime,
         seconds: Mapping[str, float] | None = None, fail: tuple[str, dict[str, str]] | None = None,
         invoke: Callable[[dict[str, Any]], Any] | None = None, execution_input: Any = None,
         on_stage: Callable[[str], None] | None = None) -> Walk:
    """One execution: stage Task `name` takes seconds[name] (default 1); `fail` = (stage, {"Error", "Cause"})
    makes that stage's Task fail with that error after its seconds; `on_stage(name)` is called as each
    stage Task runs (what the stage's job does to the lake), before it fails or succeeds."""
    states, seconds = definition["States"], seconds or {}
    clock = started_at
    data: Any = copy.deepcopy(execution_input if execution_input is not None else {})
    out = Walk()
    name: str | None = definition["StartAt"]
    for _ in range(MAX_STEPS):
        assert name is not None and name in states, f"no state {name!r}"
        state, entered = states[name], clock
        out.visited.append(name)
        context = {"$$.Execution.Name": execution_name, "$$.Execution.StartTime": sfn_time(started_at),
                   "$$.Execution.Id": f"arn:aws:states:eu-west-1:123456789012:execution:pipeline:{execution_name}",
                   "$$.State.EnteredTime": sfn_time(entered)}
        kind = state["Type"]
        if kind in {"Succeed", "Fail"}:
            out.end, out.data = name, data
            return out
        if kind == "Pass":
            result = (_fill(state["Parameters"], data, context) if "Parameters" in state
                      else copy.deepcopy(state.get("Result", data)))
            data = _put(data, state.get("ResultPath", "$"), result)
            name = state["Next"]
            continue
        assert kind == "Task", f"{name}: the walk knows Task, Pass, Succeed and Fail states, not {kind}"
        params = _fill(state.get("Parameters", {}), data, context)
        if name in STEP_STATES:
            payload = params["Payload"]
            out.payloads[name] = payload
            if invoke is not None:
                error = None
                for _ in range(1 + sum(r["MaxAttempts"] for r in state.get("Retry", []))):
                    try:
                        out.results[name] = invoke(copy.deepcopy(payload))
                        error = None
                        break
                    except Exception as exc:  # noqa: BLE001 - what Lambda reports as a function error
                        error = {"Error": type(exc).__name__,
                                 "Cause": json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__})}
                if error is not None:
                    out.errors[name] = error
                    (catch,) = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
                    data = _put(data, catch.get("ResultPath", "$"), error)
                    name = catch["Next"]
                    continue
        elif name not in (NOTIFY_STATE, *LEASE_STATES):  # a stage
            clock += timedelta(seconds=seconds.get(name, 1.0))
            if on_stage is not None:
                on_stage(name)
            if fail is not None and fail[0] == name:
                (catch,) = [c for c in state["Catch"] if "States.ALL" in c["ErrorEquals"]]
                data = _put(data, catch.get("ResultPath", "$"), dict(fail[1]))
                name = catch["Next"]
                continue
        data = _put(data, state.get("ResultPath", "$"), {"task": name})
        name = state["Next"]
    raise AssertionError(f"the walk did not end within {MAX_STEPS} states: {out.visited[-20:]}")


def _fill(template: Any, data: Any, context: Mapping[str, str]) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if value.startswith("States."):  # an intrinsic (a job name's UUID): its text stands for it
                    out[key[:-2]] = value
                else:
                    out[key[:-2]] = context[value] if value.startswith("$$.") else _get(data, value)
            else:
                out[key] = _fill(value, data, context)
        return out
    if isinstance(template, list):
        return [_fill(v, data, context) for v in template]
    return template


def _parts(path: str) -> list[str]:
    assert path == "$" or path.startswith("$."), f"the walk follows $ and $.a.b paths, not {path!r}"
    return [] if path == "$" else path[2:].split(".")


def _get(data: Any, path: str) -> Any:
    value = data
    for part in _parts(path):
        assert isinstance(value, dict) and part in value, f"{path}: no {part!r} in the state"
        value = value[part]
    return copy.deepcopy(value)


def _put(data: Any, path: str | None, value: Any) -> Any:
    """ResultPath: null keeps the input; $ replaces it; $.a.b sets that field, creating `a` if needed."""
    if path is None:
        return data
    parts = _parts(path)
    if not parts:
        return value
    data = copy.deepcopy(data)
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return data


EXECUTION_NAME = "landing-20261201-0123456789abcdef0123"  # as rfmlake.pipeline.trigger.execution_name makes them
STAGE_ERROR = {"Error": "States.TaskFailed", "Cause": '{"ErrorMessage": "the job ran out of memory"}'}


def assert_summary_on_both_paths(definition: Mapping[str, Any], pipeline: tuple[Any, ...], *,
                                 function_arn: str | None = None) -> None:
    """A successful execution goes through every stage and its `Finished:` state, then RecordRunSummary
    (before the lease is given back), then succeeds; the summary's payload has every stage's end time.
    An execution whose critical stage fails goes to RecordFailedRunSummary, then notifies and fails;
    its payload names the failed stage with its error and has the end times of the stages before it.
    The summary runs on the function the python stages run on (`function_arn` when given)."""
    from datetime import UTC

    from rfmlake.pipeline.stepfunctions import (
        FAIL_STATE,
        FINISHED_AT,
        RECORD_FAILED_STATE,
        RECORD_STATE,
        RELEASE_LEASE_AFTER_FAILURE_STATE,
        RELEASE_LEASE_STATE,
        SUCCEED_STATE,
        SUMMARIZE_STEP,
    )

    states, names = definition["States"], [stage.name for stage in pipeline]
    python = [definition["States"][s.name]["Parameters"]["FunctionName"] for s in pipeline if s.runtime == "python"]
    for record in RECORD_STATES:
        assert states[record]["Resource"] == "arn:aws:states:::lambda:invoke"
        assert states[record]["Parameters"]["FunctionName"] in ({function_arn} if function_arn else set(python))
    leased = RELEASE_LEASE_STATE in states
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    seconds = {name: 10.0 * (index + 1) for index, name in enumerate(names)}
    ends, clock = {}, start
    for name in names:
        clock += timedelta(seconds=seconds[name])
        ends[name] = sfn_time(clock)

    ok = walk(definition, execution_name=EXECUTION_NAME, started_at=start, seconds=seconds)
    assert ok.end == SUCCEED_STATE, ok.visited
    assert [n for n in ok.visited if n in names] == names
    assert [n for n in ok.visited if n in RECORD_STATES] == [RECORD_STATE]
    if leased:
        assert ok.visited.index(RECORD_STATE) < ok.visited.index(RELEASE_LEASE_STATE)
    payload = ok.payloads[RECORD_STATE]
    assert (payload["step"], payload["run_id"], payload["run_failed"]) == (SUMMARIZE_STEP, EXECUTION_NAME, False)
    assert (payload["started_at"], payload["ended_at"]) == (sfn_time(start), ends[names[-1]])
    assert {k: v["at"] for k, v in payload["execution"][FINISHED_AT].items()} == ends

    critical = [stage.name for stage in pipeline if stage.critical]
    assert critical, "no critical stage to fail"
    for failed in critical:
        bad = walk(definition, execution_name=EXECUTION_NAME, started_at=start, seconds=seconds,
                   fail=(failed, STAGE_ERROR))
        assert bad.end == FAIL_STATE, (failed, bad.visited)
        assert [n for n in bad.visited if n in RECORD_STATES] == [RECORD_FAILED_STATE], failed
        after = bad.visited[bad.visited.index(RECORD_FAILED_STATE):]
        assert NOTIFY_STATE in after and (not leased or RELEASE_LEASE_AFTER_FAILURE_STATE in after), failed
        payload = bad.payloads[RECORD_FAILED_STATE]
        assert (payload["run_failed"], payload["ended_at"]) == (True, ends[failed]), failed
        execution = payload["execution"]
        assert (execution["failed_stage"], execution["error"]) == (failed, STAGE_ERROR)
        before = names[:names.index(failed)]
        assert {k: v["at"] for k, v in execution.get(FINISHED_AT, {}).items()} == {n: ends[n] for n in before}


def assert_rollback_on_the_failure_path(definition: Mapping[str, Any], pipeline: tuple[Any, ...]) -> None:
    """RecordRunStart runs once per execution, after the run lease is held and before the first stage,
    on the stage Lambda with the run id; a successful execution never rolls back. Whichever critical
    stage fails, RollBackRun runs (once, with the run id) before RecordFailedRunSummary, then the
    run notifies and fails; if RollBackRun itself fails, the summary still runs with its error at
    $.rollback_error, and the run still notifies and fails. A start that cannot be recorded goes
    to the failed summary without a rollback (nothing was committed)."""
    from datetime import UTC

    from rfmlake.pipeline.stepfunctions import (
        FAIL_STATE,
        HOLD_LEASE_STATE,
        RECORD_FAILED_STATE,
        RECORD_START_STATE,
        RECORD_START_STEP,
        ROLL_BACK_STATE,
        ROLL_BACK_STEP,
        ROLLBACK_ERROR,
        SUCCEED_STATE,
    )

    names = [stage.name for stage in pipeline]
    start = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    function = definition["States"][RECORD_STATES[0]]["Parameters"]["FunctionName"]
    for step in (RECORD_START_STATE, ROLL_BACK_STATE):
        assert definition["States"][step]["Parameters"]["FunctionName"] == function, step

    def steps(payload: dict[str, Any]) -> dict[str, Any]:
        return {"step": payload["step"]}

    ok = walk(definition, execution_name=EXECUTION_NAME, started_at=start, invoke=steps)
    assert ok.end == SUCCEED_STATE and ROLL_BACK_STATE not in ok.visited, ok.visited
    first = ok.visited.index(RECORD_START_STATE)
    assert ok.visited.count(RECORD_START_STATE) == 1 and ok.visited[first + 1] == names[0], ok.visited
    if HOLD_LEASE_STATE in definition["States"]:
        assert ok.visited[:first] == [HOLD_LEASE_STATE], ok.visited
    else:
        assert first == 0, ok.visited
    assert ok.payloads[RECORD_START_STATE] == {"step": RECORD_START_STEP, "run_id": EXECUTION_NAME}

    for failed in [stage.name for stage in pipeline if stage.critical]:
        bad = walk(definition, execution_name=EXECUTION_NAME, started_at=start, fail=(failed, STAGE_ERROR),
                   invoke=steps)
        assert bad.end == FAIL_STATE, (failed, bad.visited)
        after = bad.visited[bad.visited.index(failed):]
        assert [n for n in after if n in STEP_STATES] == [ROLL_BACK_STATE, RECORD_FAILED_STATE], (failed, after)
        assert NOTIFY_STATE in after[after.index(RECORD_FAILED_STATE):], failed
        assert bad.payloads[ROLL_BACK_STATE] == {"step": ROLL_BACK_STEP, "run_id": EXECUTION_NAME}

        def rollback_fails(payload: dict[str, Any]) -> dict[str, Any]:
            if payload["step"] == ROLL_BACK_STEP:
                raise RuntimeError("Glue UpdateTable was refused")
            return steps(payload)

        broken = walk(definition, execution_name=EXECUTION_NAME, started_at=start, fail=(failed, STAGE_ERROR),
                      invoke=rollback_fails)
        assert broken.end == FAIL_STATE and ROLL_BACK_STATE in broken.errors, (failed, broken.visited)
        after = broken.visited[broken.visited.index(ROLL_BACK_STATE):]
        assert after[1] == RECORD_FAILED_STATE and NOTIFY_STATE in after, (failed, after)
        execution = broken.payloads[RECORD_FAILED_STATE]["execution"]
        assert execution[ROLLBACK_ERROR] == broken.errors[ROLL_BACK_STATE], failed
        assert (execution["failed_stage"], execution["error"]) == (failed, STAGE_ERROR), failed

    def start_fails(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["step"] == RECORD_START_STEP:
            raise RuntimeError("S3 refused the start record")
        return steps(payload)

    unrecorded = walk(definition, execution_name=EXECUTION_NAME, started_at=start, invoke=start_fails)
    assert unrecorded.end == FAIL_STATE and not set(names) & set(unrecorded.visited), unrecorded.visited
    assert ROLL_BACK_STATE not in unrecorded.visited and NOTIFY_STATE in unrecorded.visited
    assert unrecorded.payloads[RECORD_FAILED_STATE]["execution"]["failed_stage"] == "run start"
