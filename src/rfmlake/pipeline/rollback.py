"""A failed run on AWS commits nothing (docs/adr/0016): the state machine's `RecordRunStart` and
`RollBackRun` states, run on the stage Lambda (rfmlake.pipeline.remote.handle_event).

- `record_run_start` (after the run lease is held, before the first stage): every table's pointer
  (rfmlake.lake.rollback.record_tables) and the lake state outside the tables that ADR 0016 puts
  back locally (the segmentation model's `current` pointer, the identity matching model) go to
  `_system/runs/<run_id>/start.json`; `_system/run_in_flight.json` names it, so vacuum keeps the
  start versions and erasure waits. The data dbt-athena's replaced marts left under `gold/_dbt/`
  that no table reads any more (the previous run's, a failed run's) is deleted here, when no
  rollback can need it: the project keeps a replaced mart's data (dbt/macros/keep_replaced_data.sql)
  so that this run's rollback can point the mart back at it.
- `roll_back_run` (on the failure path, before the failed run's summary): every table whose pointer
  moved gets its start pointer back, tables the run created are dropped, the kept state is put
  back; what it did goes to `_system/runs/<run_id>/rollback.json`, which the run summary carries.
- `end_run`: the marker goes once the run succeeded or was rolled back. A rollback that fails leaves
  it saying so, without expiry; the next `record_run_start` then refuses (UnfinishedRunError) until
  an operator finishes that rollback or deletes the marker, and rolls back first a run that ended
  without reaching its rollback (stopped by hand, timed out): no run starts over another's writes.

Each takes the lake's lock for the run (an S3 lease, owner = the run id), as the stages do.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from rfmlake.audiences.store import TABLE as AUDIENCES_TABLE
from rfmlake.errors import PipelineError
from rfmlake.lake.rollback import (
    IN_FLIGHT,
    ROLLBACK_ERROR,
    ROLLBACK_STARTED,
    read_marker,
    record_tables,
    restore_tables,
)
from rfmlake.lake.tables import Lake
from rfmlake.pipeline.stepfunctions import ROLL_BACK_STEP

# Tables written outside runs (the marketing app saves audiences while a run may be under way, without
# the lake's lock): a failed run's rollback leaves them as they are, or it would undo a marketer's save.
NOT_WRITTEN_BY_RUNS: tuple[str, ...] = (".".join(AUDIENCES_TABLE),)
START_FILE = "start.json"       # under _system/runs/<run_id>/
ROLLBACK_FILE = "rollback.json"  # under _system/runs/<run_id>/: what RollBackRun did
START_FORMAT = 1


def kept_state_paths() -> tuple[tuple[str, ...], ...]:
    """Lake state outside the tables that a run moves and ADR 0016 puts back after a failure, here
    and in the local runner (rfmlake.pipeline.runner.KeptState): the segmentation model's `current`
    pointer (rfmlake.segmentation.model.ModelStore), the identity matching model
    (rfmlake.identity.job.MODEL_PATH). Small files, kept by content."""
    from rfmlake.identity.job import MODEL_PATH as IDENTITY_MODEL
    from rfmlake.segmentation.model import CURRENT_POINTER

    return (("models", "segmentation", CURRENT_POINTER), IDENTITY_MODEL)


def read_kept_state(lake: Lake) -> dict[str, bytes | None]:
    """The kept state's files as they are now (None: absent), by their path under _system."""
    return {"/".join(path): lake.read_system(*path) for path in kept_state_paths()}


def restore_kept_state(lake: Lake, state: dict[str, bytes | None]) -> list[str]:
    """Put the kept state's files back as `state` has them (None: delete); returns those changed."""
    restored = []
    for key, data in sorted(state.items()):
        path = key.split("/")
        if lake.read_system(*path) == data:
            continue
        if data is None:
            lake.storage.delete_file(lake.system_uri(*path))
        else:
            lake.write_system(data, *path)
        restored.append(key)
    return restored


class UnfinishedRunError(PipelineError):
    """An earlier run's writes may still be in the lake (its rollback failed, or it ended without one
    and cannot be rolled back now): no run starts until that is resolved."""


def _check_run_id(run_id: object) -> str:
    from rfmlake.pipeline.context import check_run_id

    return check_run_id(run_id, "a run's start and rollback")


def _locked(lake: Lake, run_id: str):  # noqa: ANN202 - a context manager
    from rfmlake.lake.locks import lake_lock

    return lake_lock(lake, PipelineError(f"another rfmlake stage, sync or erasure is using the lake at {lake}"),
                     owner=run_id)


def record_run_start(lake: Lake, run_id: str) -> dict[str, Any]:
    """Record what the run starts from and mark it in flight; returns a short account. An earlier
    run's marker still there is resolved first (_resolve_earlier): rolled back, or the run refuses
    with UnfinishedRunError."""
    from rfmlake.lake.dbt_data import delete_unread_dbt_data
    from rfmlake.pipeline.trigger import RUN_TIMEOUT_SECONDS, START_GRACE_SECONDS

    run_id = _check_run_id(run_id)
    with _locked(lake, run_id):
        lake.recover()  # a commit a killed process left half applied is undone before it is recorded
        earlier = _resolve_earlier(lake, run_id)
        tables = record_tables(lake)
        state = {key: _encode(data) for key, data in read_kept_state(lake).items()}
        record = {"format": START_FORMAT, "run_id": run_id, "recorded_at": time.time(), "tables": tables,
                  "state": state, "earlier_run": earlier}
        lake.write_system(json.dumps(record, sort_keys=True).encode(), "runs", run_id, START_FILE)
        marker = {"run_id": run_id, "record": f"runs/{run_id}/{START_FILE}",
                  "expires_at": time.time() + RUN_TIMEOUT_SECONDS + START_GRACE_SECONDS}
        lake.write_system(json.dumps(marker).encode(), IN_FLIGHT)
        dbt_files = delete_unread_dbt_data(lake) if lake.catalog is not None else 0
    return {"step": "record_run_start", "run_id": run_id, "tables": len(tables),
            "dbt_data_files_deleted": dbt_files, "earlier_run": earlier}


def _resolve_earlier(lake: Lake, run_id: str) -> dict[str, Any] | None:
    """The marker of an earlier run still in the lake when `run_id` starts means that run ended
    without its rollback finishing: its writes may be in the lake, and replacing its marker would
    lose what to put back. Its rollback failed (or was cut short): UnfinishedRunError, for an
    operator to finish it. It never began (an execution stopped by hand or timed out, whose Catch
    never ran): it is rolled back now, and UnfinishedRunError if that fails. A run whose summary
    says it succeeded needs none (only its marker's removal failed). Returns what was done."""
    from rfmlake.reporting.quality import RUN_SUMMARY, summary_succeeded

    marker = read_marker(lake)
    if marker is None or marker["run_id"] == run_id:  # none, or this run's own (RecordRunStart retried)
        return None
    earlier = str(marker["run_id"])
    if marker.get(ROLLBACK_STARTED) is not None:
        raise UnfinishedRunError(_unfinished(lake, earlier, str(marker.get(ROLLBACK_ERROR) or "it did not finish")))
    summary = lake.read_system("runs", earlier, RUN_SUMMARY)
    if summary_succeeded(json.loads(summary) if summary is not None else None):
        return {"run_id": earlier, "status": "succeeded"}
    try:
        return {"run_id": earlier, **_roll_back(lake, earlier)}
    except PipelineError as exc:
        raise UnfinishedRunError(_unfinished(lake, earlier, str(exc))) from None


def _unfinished(lake: Lake, earlier: str, error: str) -> str:
    # The summary and the notification keep 500 characters (remote.ERROR_MESSAGE_CHARS): what to do first.
    payload = json.dumps({"step": ROLL_BACK_STEP, "run_id": earlier})
    return (f"run {earlier} was not rolled back, so the lake may still hold its writes, and no run starts until "
            f"that is resolved: fix the cause and invoke the stage function with {payload}, or delete "
            f"{lake.system_uri(IN_FLIGHT)} to keep the lake as it is; then start a run again. "
            f"Its rollback: {error}")


def roll_back_run(lake: Lake, run_id: str) -> dict[str, Any]:
    """Put every table and the kept state back to the run's start; raises PipelineError when the run
    has no start record (nothing can be restored then, and the summary must say so) or a table could
    not be put back. Until it succeeds, the marker says the rollback is unfinished (no run starts)."""
    run_id = _check_run_id(run_id)
    with _locked(lake, run_id):
        return {"step": ROLL_BACK_STEP, "run_id": run_id, **_roll_back(lake, run_id)}


def _roll_back(lake: Lake, run_id: str) -> dict[str, Any]:
    """roll_back_run's work, under the lake's lock."""
    marker = read_marker(lake)
    if marker is not None and marker["run_id"] != run_id:
        raise PipelineError(f"the lake's unfinished run is {marker['run_id']}, not {run_id}: roll that one back "
                            f"(or delete {lake.system_uri(IN_FLIGHT)} if no rollback is wanted)")
    # Written first: a rollback that fails, or is cut short, leaves the marker saying so (it no longer
    # expires), so no later run replaces it and the start versions stay kept.
    rolling = {**(marker or {"run_id": run_id, "record": f"runs/{run_id}/{START_FILE}"}),
               ROLLBACK_STARTED: time.time()}
    rolling.pop(ROLLBACK_ERROR, None)
    lake.write_system(json.dumps(rolling).encode(), IN_FLIGHT)
    try:
        raw = lake.read_system("runs", run_id, START_FILE)
        if raw is None:
            raise PipelineError(f"run {run_id} has no start record (_system/runs/{run_id}/{START_FILE}); "
                                "its tables cannot be rolled back")
        record = json.loads(raw)
        lake.recover()
        report = restore_tables(lake, record["tables"], leave=NOT_WRITTEN_BY_RUNS)
        state_restored = restore_kept_state(lake, {key: _decode(recorded)
                                                   for key, recorded in record.get("state", {}).items()})
        result = {"status": "incomplete" if report.failed else "rolled back", **report.to_dict(),
                  "state_restored": state_restored}
        lake.write_system(json.dumps(result, indent=2).encode(), "runs", run_id, ROLLBACK_FILE)
        if report.failed:  # the execution's summary says so; the start versions stay kept for another try
            first = next(iter(sorted(report.failed.items())))
            raise PipelineError(f"the rollback of run {run_id} could not put back {len(report.failed)} tables "
                                f"({', '.join(sorted(report.failed))}); first: {first[1]}")
    except PipelineError as exc:
        lake.write_system(json.dumps({**rolling, ROLLBACK_ERROR: str(exc)}).encode(), IN_FLIGHT)
        raise
    _end(lake, run_id)
    return result


def note_rollback_failed(lake: Lake, run_id: str, error: str) -> None:
    """The state machine caught RollBackRun's error (the function timed out, or raised before its
    own note): the marker says the rollback is unfinished, so no later run replaces it."""
    marker = read_marker(lake)
    if marker is not None and marker["run_id"] == run_id and not marker.get(ROLLBACK_ERROR):
        lake.write_system(json.dumps({**marker, ROLLBACK_STARTED: marker.get(ROLLBACK_STARTED) or time.time(),
                                      ROLLBACK_ERROR: error}).encode(), IN_FLIGHT)


def end_run(lake: Lake, run_id: str) -> None:
    """The run is over (it succeeded): its start versions are no longer pinned."""
    _end(lake, _check_run_id(run_id))


def _end(lake: Lake, run_id: str) -> None:
    marker = read_marker(lake)
    if marker is not None and marker["run_id"] == run_id:
        lake.storage.delete_file(lake.system_uri(IN_FLIGHT))


def rollback_outcome(lake: Lake, run_id: str, error: str | None = None) -> dict[str, Any] | None:
    """What the failed run's summary says about its rollback: its error (RollBackRun failed), else
    what RollBackRun recorded (None: it did not run, e.g. the run failed before its start was recorded)."""
    raw = lake.read_system("runs", run_id, ROLLBACK_FILE)
    recorded = json.loads(raw) if raw is not None else None
    if error is not None:  # what it could put back before it failed, if it got that far
        return {**(recorded or {}), "status": "failed", "error": error}
    return recorded


def _encode(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


def _decode(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)
