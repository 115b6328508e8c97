"""The local runner: executes PIPELINE in-process, stage by stage, with progress and a run summary."""

from __future__ import annotations

import importlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from rfmlake.errors import PipelineError, RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.locks import lake_lock
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE, Stage, undeclared_writes
from rfmlake.pipeline.memory import between_stages
from rfmlake.pipeline.stages import RunState
from rfmlake.pipeline.watchdog import StallWatchdog
from rfmlake.reporting.quality import RUN_SUMMARY

# (stage, "started"|"done"|"skipped"|"failed", seconds)
StageCallback = Callable[[Stage, str, float | None], None]


@dataclass
class StageRun:
    name: str
    status: str                  # succeeded, skipped (a model stage below its minimum or whose fit failed), failed
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @classmethod
    def finished(cls, name: str, seconds: float, summary: Any) -> StageRun:
        """A stage that returned: "skipped" when its summary says why it skipped (rfmlake.pipeline.stages)."""
        summary = _jsonable(summary)
        fields = summary if isinstance(summary, dict) else {}
        skipped = fields.get("skipped")
        notes = [str(n) for n in fields.get("notes") or []]
        if skipped:
            notes.insert(0, str(skipped))
        return cls(name, "skipped" if skipped else "succeeded", seconds, summary=summary, notes=notes)


@dataclass
class RunSummary:
    run_id: str
    lake: str
    landing: str
    as_of: str | None
    started_at: str
    seconds: float
    stages: list[StageRun]
    tables: dict[str, int]                       # "zone.table" -> rows
    quarantine: dict[str, dict[str, int]]        # entity -> reason -> rows
    reconciliation_ok: bool
    files_ingested: int
    segments: list[dict[str, Any]]               # rfm_segment, customers, monetary_share
    clusters: list[dict[str, Any]]               # cluster_id, cluster_label, customers, monetary_share
    model_version: str | None

    @property
    def notes(self) -> list[str]:
        """Every stage's notes as "stage: note", skipped models first within a stage."""
        return [f"{run.name}: {note}" for run in self.stages for note in run.notes]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "notes": self.notes}


def _resolve(entry: str) -> Callable[[RunContext, RunState], dict[str, Any]]:
    module_name, func_name = entry.split(":")
    return getattr(importlib.import_module(module_name), func_name)


def _lake_lock(lake: Lake) -> AbstractContextManager[None]:
    """One run per lake at a time; a second run fails fast instead of interleaving commits."""
    return lake_lock(lake, PipelineError(f"another rfmlake run or erasure is using the lake at {lake}"))


def run_pipeline(
    ctx: RunContext,
    *,
    on_stage: StageCallback | None = None,
    stages: tuple[Stage, ...] = PIPELINE,
) -> RunSummary:
    """Run every stage in order. Raises PipelineError naming the failed stage; the run report and
    (for unexpected errors) the traceback are written to the run folder either way."""
    state = RunState()
    runs: list[StageRun] = []
    started = time.perf_counter()
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _lake_lock(ctx.lake):
            # A run killed while committing left a journal: put those tables back first.
            restored = ctx.lake.recover()
            if restored:
                logging.getLogger(__name__).warning("rolled back the interrupted commit of %s", ", ".join(restored))
            kept = KeptState.capture(ctx.lake)
            try:
                # A failed run commits nothing: every table the stages commit joins one transaction
                # that ends with the last stage (each stage reads what the ones before it committed;
                # other readers see the lake as it was until then). A kill -9 leaves only orphan
                # versions, which vacuum removes.
                with ctx.lake.transaction():
                    _run_stages(ctx, state, stages, runs, on_stage)
            except BaseException:
                kept.restore(ctx.lake)
                raise
            for action in state.after_commit:
                action()
            ctx.lake.vacuum()
    finally:
        state.close()
    summary = summarize_lake(ctx, runs, time.perf_counter() - started)
    _write_report(ctx, runs, summary)
    return summary


@dataclass(frozen=True)
class KeptState:
    """What a local run changes in the lake besides its tables, put back when the run fails: the
    segmentation model's `current` pointer (the segmentation stage moves it when it fits a model,
    and customer_value records it), the identity matching model (saved when the identity stage
    trains one) and the profile store generation the run loaded (the store's active generation only
    moves once the run committed: RunState.after_commit). Activation's and the journeys' state are
    not among them: they record what was sent, which no rollback can unsend
    (rfmlake.activation.engine, rfmlake.journeys.store)."""

    files: dict[str, bytes | None]  # rfmlake.pipeline.rollback.kept_state_paths, by content (as on AWS)

    @classmethod
    def capture(cls, lake: Lake) -> KeptState:
        """What there is now, after dropping what a killed run left (a generation never swapped in)."""
        from rfmlake.pipeline.rollback import read_kept_state
        from rfmlake.profiles.indexer import embedded_store

        embedded_store(lake).discard_unactivated()
        return cls(read_kept_state(lake))

    def restore(self, lake: Lake) -> None:
        from rfmlake.pipeline.rollback import restore_kept_state
        from rfmlake.profiles.indexer import embedded_store

        try:
            restore_kept_state(lake, self.files)
            embedded_store(lake).discard_unactivated()
        except Exception:  # the run's own error is the one to report
            logging.getLogger(__name__).exception("could not put the models or the profile store back")


def _run_stages(ctx: RunContext, state: RunState, stages: tuple[Stage, ...], runs: list[StageRun],
                on_stage: StageCallback | None) -> None:
    """Every stage in order; raises PipelineError naming the failed stage (reports written)."""
    with between_stages() as after_stage:
        _run_each(ctx, state, stages, runs, on_stage, after_stage)


def _run_each(ctx: RunContext, state: RunState, stages: tuple[Stage, ...], runs: list[StageRun],
              on_stage: StageCallback | None, after_stage: Callable[[], None]) -> None:
    for stage in stages:
        if on_stage:
            on_stage(stage, "started", None)
        t0 = time.perf_counter()
        before = _versions(ctx.lake)
        watchdog = StallWatchdog(ctx.settings.stage_stall_minutes * 60)
        try:
            with watchdog:  # a stage stalled in an engine (no CPU for minutes) is interrupted
                summary = _resolve(stage.entry)(ctx, state)  # its commits join the run's transaction
            _check_writes(stage, before, _versions(ctx.lake))
        except BaseException as exc:
            seconds = time.perf_counter() - t0
            if watchdog.fired is not None and isinstance(exc, Exception | KeyboardInterrupt):
                message = (f"stopped after {watchdog.fired}: a stalled query or engine, interrupted so "
                           f"the run fails and rolls back instead of holding the lake "
                           f"(stage_stall_minutes: {ctx.settings.stage_stall_minutes})")
                raise _stage_failed(ctx, runs, on_stage, stage, seconds, message) from None
            if isinstance(exc, RfmlakeError):
                raise _stage_failed(ctx, runs, on_stage, stage, seconds, str(exc)) from None
            if not isinstance(exc, Exception):
                raise
            # a bug, not bad input: keep the traceback, show one line
            log = ctx.run_dir / "error.log"
            log.write_text(traceback.format_exc())
            message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
            raise _stage_failed(ctx, runs, on_stage, stage, seconds, message, log=log) from None
        after_stage()  # the next stage starts from what this one still holds, not from its peak
        seconds = time.perf_counter() - t0
        run = StageRun.finished(stage.name, seconds, summary)
        runs.append(run)
        if on_stage:
            on_stage(stage, "skipped" if run.status == "skipped" else "done", seconds)


def _stage_failed(ctx: RunContext, runs: list[StageRun], on_stage: StageCallback | None, stage: Stage,
                  seconds: float, error: str, log: Path | None = None) -> PipelineError:
    """Record the failed stage (report written) and return the error that stops the run."""
    runs.append(StageRun(stage.name, "failed", seconds, error=error))
    if on_stage:
        on_stage(stage, "failed", seconds)
    _write_report(ctx, runs, None, error=error)
    if log is not None:
        return PipelineError(f"stage {stage.name} failed unexpectedly: {error}\n(details: {log})")
    return PipelineError(f"stage {stage.name} failed:\n{error}")


def _versions(lake: Lake) -> dict[str, str]:
    return {ref.qualified_name: ref.version for ref in lake.tables()}


def _check_writes(stage: Stage, before: dict[str, str], after: dict[str, str]) -> None:
    """A stage may commit only the tables its definition declares: on AWS its role can write nothing
    else, so an undeclared table would work here and fail there (rfmlake.pipeline.definition)."""
    committed = {name for name, version in after.items() if before.get(name) != version}
    undeclared = undeclared_writes(stage, committed)
    if undeclared:
        raise PipelineError(
            f"committed {', '.join(undeclared)}, which the stage's `writes` in rfmlake.pipeline.definition "
            f"does not declare ({', '.join(stage.writes) or 'nothing'}); declare it, or the deployed stage's "
            "role may not write it"
        )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _write_report(ctx: RunContext, runs: list[StageRun], summary: RunSummary | None, error: str | None = None) -> Path:
    write_run_report(ctx.lake, ctx.run_id, run_report(ctx.run_id, runs, summary, error))
    return ctx.run_dir / RUN_SUMMARY


def run_report(run_id: str, runs: list[StageRun], summary: RunSummary | None, error: str | None = None
               ) -> dict[str, Any]:
    """A run's summary.json, as rfmlake.reporting.quality.summary_succeeded and the app's Runs page
    read it: the lake summary (what the lake holds after the run, the stages' status and seconds),
    with `error` when the run failed; only the stages and the error when there is no lake summary."""
    if summary is None:
        return {"run_id": run_id, "stages": [asdict(r) for r in runs], "error": error}
    payload = summary.to_dict()
    if error is not None:
        payload["error"] = error
    return payload


def write_run_report(lake: Lake, run_id: str, payload: dict[str, Any]) -> None:
    """`<lake>/_system/runs/<run_id>/summary.json`, through the lake's storage (a folder or S3)."""
    lake.write_system(json.dumps(payload, indent=2, default=str).encode(), "runs", run_id, RUN_SUMMARY)


def summarize_lake(ctx: RunContext, runs: list[StageRun], seconds: float) -> RunSummary:
    """What the lake holds after the run, read back through the catalog (so it is what analysts see)."""
    from rfmlake.lake.catalog import connect

    con = connect(ctx.lake)
    tables: dict[str, int] = {}
    for ref in ctx.lake.tables():
        tables[ref.qualified_name] = con.execute(f"SELECT count(*) FROM {ref.zone}.{ref.name}").fetchone()[0]

    def rows(query: str) -> list[dict[str, Any]]:
        cursor = con.execute(query)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    quarantine: dict[str, dict[str, int]] = {}
    if "bronze.quarantine" in tables:
        for row in rows("SELECT entity, reason, count(*) AS n FROM bronze.quarantine GROUP BY 1, 2 ORDER BY 1, 2"):
            quarantine.setdefault(row["entity"], {})[row["reason"]] = row["n"]
    reconciliation_ok, files = True, 0
    if "silver.ingest_reconciliation" in tables:
        check = rows(
            "SELECT count(*) AS files, count(*) FILTER (WHERE rows_in <> rows_accepted + rows_quarantined) AS bad "
            "FROM silver.ingest_reconciliation"
        )[0]
        reconciliation_ok, files = check["bad"] == 0, check["files"]
    segments: list[dict[str, Any]] = []
    clusters: list[dict[str, Any]] = []
    model_version = None
    if "gold.customer_rfm" in tables:
        segments = rows(
            "SELECT rfm_segment, count(*) AS customers, "
            "round(sum(monetary) / nullif(sum(sum(monetary)) OVER (), 0), 4) AS monetary_share "
            "FROM gold.customer_rfm GROUP BY 1 ORDER BY customers DESC, rfm_segment"
        )
        clusters = rows(
            "SELECT cluster_id, cluster_label, count(*) AS customers, "
            "round(sum(monetary) / nullif(sum(sum(monetary)) OVER (), 0), 4) AS monetary_share "
            "FROM gold.customer_rfm GROUP BY 1, 2 ORDER BY 1"
        )
        model_version = con.execute("SELECT max(model_version) FROM gold.customer_rfm").fetchone()[0]
    as_of = ctx.as_of.isoformat() if ctx.as_of else None
    if as_of is None and "gold.customer_rfm" in tables:
        value = con.execute("SELECT max(as_of_date) FROM gold.customer_rfm").fetchone()[0]
        as_of = value.isoformat() if value else None
    con.close()
    return RunSummary(
        run_id=ctx.run_id,
        lake=ctx.lake.location,
        landing=str(ctx.landing_dir),
        as_of=as_of,
        started_at=ctx.started_at.astimezone(UTC).isoformat(),
        seconds=round(seconds, 2),
        stages=runs,
        tables=tables,
        quarantine=quarantine,
        reconciliation_ok=reconciliation_ok,
        files_ingested=files,
        segments=segments,
        clusters=clusters,
        model_version=model_version,
    )

