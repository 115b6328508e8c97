"""Run one pipeline stage outside the local runner: what the AWS stage Lambda (python stages) and
the SageMaker processing container (segmentation-runtime stages without their own entry script)
execute for a Step Functions Task. The stage is looked up in PIPELINE by name, so the state machine
and `rfmlake run` call the same function.

Where the lake lives comes from the environment: RFMLAKE_LAKE, RFMLAKE_LANDING, RFMLAKE_CONFIG.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rfmlake.errors import ConfigError, RfmlakeError
from rfmlake.pipeline.definition import PIPELINE, Stage

if TYPE_CHECKING:
    from rfmlake.pipeline.context import RunContext


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


def handle_event(event: Mapping[str, Any], env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Lambda payload from the state machine: {"stage": ..., "run_id": ...}."""
    env = os.environ if env is None else env
    if not isinstance(event, Mapping) or not isinstance(event.get("stage"), str):
        raise ConfigError("the stage event must be an object with a string 'stage'")
    lake = env.get("RFMLAKE_LAKE")
    if not lake:
        raise ConfigError("RFMLAKE_LAKE is not set: the stage function needs the lake location")
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
