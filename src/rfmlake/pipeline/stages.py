"""Adapters from the pipeline definition to the package functions that do the work.

Each stage takes (ctx, state) and returns a dict summary for the run report. The logic lives in
rfmlake.ingest / modeling / segmentation / quality; nothing here computes data.

Two summary keys mean something to the runner: "skipped" (a reason) marks a model stage that was
below its minimum or whose fit failed, so it published nothing and the run goes on; "notes" (a list
of strings) are shown in the run summary.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from rfmlake.pipeline.context import RunContext

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from rfmlake.ingest.engine import Engine


@dataclass
class RunState:
    """What stages hand to later stages within one local run."""

    reports: dict[str, Any] = field(default_factory=dict)
    # Run once the run's tables are committed (a local run commits them all at its end): switching
    # readers of something outside the lake to what the run built, e.g. the profile store.
    after_commit: list[Callable[[], object]] = field(default_factory=list)
    _spark: SparkSession | None = None
    _owns_spark: bool = False
    _engine: Engine | None = None

    @property
    def spark(self) -> SparkSession:
        """Started on first use, so a run that fails before Spark is needed never pays for a JVM."""
        if self._spark is None:
            from pyspark.sql import SparkSession

            from rfmlake.ingest.spark import get_spark

            self._owns_spark = SparkSession.getActiveSession() is None
            self._spark = get_spark("rfmlake")
        return self._spark

    def engine(self, ctx: RunContext) -> Engine:
        """The ingest engine the settings choose (ingest.engine): DuckDB for a local lake by default,
        Spark otherwise; one per run."""
        if self._engine is None:
            from rfmlake.ingest.engine import DuckEngine, SparkEngine

            kind = ctx.settings.ingest.engine
            if kind == "auto":
                kind = "duckdb" if ctx.lake.is_local else "spark"
            if kind == "spark":
                self._engine = SparkEngine(self.spark)
            else:
                scratch = ctx.lake.system_dir / "tmp" / ctx.run_id if ctx.lake.is_local else None
                self._engine = DuckEngine(temp_dir=scratch, memory_limit=ctx.settings.duckdb_memory_limit)
        return self._engine

    def release_engine(self) -> None:
        """Close the ingest engine (a later call to `engine` opens a new one): a DuckDB engine's
        buffer pool otherwise stays filled, up to its memory limit, through every later stage."""
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    def close(self) -> None:
        self.release_engine()
        # Stop only a session this run started (tests and Glue hand in their own).
        if self._spark is not None and self._owns_spark:
            self._spark.stop()
        self._spark = None


def ingest_bronze(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.ingest.jobs import run_landing_to_bronze

    results, plan = run_landing_to_bronze(state.engine(ctx), ctx)
    state.reports["ingest_bronze"] = results
    summary: dict[str, Any] = {
        "engine": state.engine(ctx).name, "mode": "full" if ctx.full else "incremental",
        "files": len(plan.read) + len(plan.unchanged), "files_read": len(plan.read),
        "files_unchanged": len(plan.unchanged), "tables": {name: r.rows for name, r in sorted(results.items())},
    }
    if plan.vanished:
        summary["files_gone_from_landing"] = [e.source_file for e in plan.vanished]
    return summary


def conform_silver(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.ingest.jobs import run_bronze_to_silver

    # Quarantine metrics go to the publisher RFMLAKE_METRICS names (default: only this run report).
    report, metrics = run_bronze_to_silver(state.engine(ctx), ctx)
    state.reports["conform_silver"] = report
    state.release_engine()  # the last stage that uses it
    return {**report.to_dict(), "metrics": metrics}


def _quality(ctx: RunContext, state: RunState, zone: str) -> dict[str, Any]:
    import json

    from rfmlake.quality import QualityContext, run_quality
    from rfmlake.rfm.rules import SegmentRules

    rules = SegmentRules.load(ctx.settings.segmentation.rules_file, expected_n_bins=ctx.settings.rfm.score_bins)
    context = QualityContext.from_settings(ctx.settings, segment_names=tuple(rules.names), run_at=ctx.started_at)
    report = run_quality(ctx.lake, zone, context=context, scope=_silver_scope(ctx) if zone == "silver" else None)
    state.reports[f"quality_{zone}"] = report
    # Through the lake's storage: on AWS the stage reads the lake on S3 in place (no workspace), so
    # its reports go straight to the run's folder there.
    ctx.lake.write_system(report.render().encode(), "runs", ctx.run_id, f"quality_{zone}.txt")
    ctx.lake.write_system(json.dumps(report.to_dict(), indent=2, default=str).encode(),
                          "runs", ctx.run_id, f"quality_{zone}.json")
    report.raise_for_critical()
    return {"summary": report.summary(), "warnings": len(report.warnings)}


def _silver_scope(ctx: RunContext) -> dict[str, Any] | None:
    """In an incremental run, row checks read only the silver partitions this run wrote (table
    checks still read every row); after a full rebuild, everything."""
    from rfmlake.ingest.silver import partitions_written
    from rfmlake.quality.sql import RowScope

    written = None if ctx.full else partitions_written(ctx.lake, ctx.run_id)
    if written is None:
        return None
    scope: dict[str, Any] = {}
    for ref in ctx.lake.tables("silver"):
        if ref.is_partitioned:
            keys = written.get(ref.qualified_name, [])
            listed = ", ".join("'" + k.replace("'", "''") + "'" for k in keys)
            scope[ref.qualified_name] = RowScope(predicate=f"_file IN ({listed})" if keys else "false")
    return scope


def quality_silver(ctx: RunContext, state: RunState) -> dict[str, Any]:
    return _quality(ctx, state, "silver")


def quality_gold(ctx: RunContext, state: RunState) -> dict[str, Any]:
    return _quality(ctx, state, "gold")


def identity(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.identity import resolve_identity
    from rfmlake.ingest.engine import DuckEngine

    # Its own DuckDB (the stage runs in one process, locally or in the stage function on AWS, whatever
    # engine ingestion uses); it spills past the memory limit into a scratch folder it removes.
    scratch = ctx.lake.system_dir / "tmp" / f"{ctx.run_id}-identity" if ctx.lake.is_local else None
    engine = DuckEngine(temp_dir=scratch, memory_limit=ctx.settings.duckdb_memory_limit)
    try:
        report = resolve_identity(ctx, engine)
    finally:
        engine.close()
    state.reports["identity"] = report
    return report.to_dict()


def dbt_build(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.modeling.dbt_runner import run_dbt

    # A lake on S3 (this process holds only a workspace of it) is built by dbt-athena in Athena,
    # into the Glue databases <prefix>_<layer>; a local lake by dbt-duckdb, exported into the lake.
    result = run_dbt(ctx, "build", target="local" if ctx.workspace_of is None else "athena", unit_tests=False,
                     source_tests=False)
    state.reports["dbt_build"] = result
    return result.to_dict()


def segmentation(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.segmentation.job import run_segmentation

    report = run_segmentation(ctx)
    state.reports["segmentation"] = report
    # The report's notes (k capped, clustering skipped, alignment) are the stage's notes.
    return report.to_dict()


def customer_value(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.value.job import run_customer_value

    report = run_customer_value(ctx)
    state.reports["customer_value"] = report
    keys = ("model_version", "purchase_period", "customers", "repeat_customers", "totals", "notes", "skipped")
    return {key: report[key] for key in keys if key in report}


def recommendations(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.recommend.job import run_recommendations, stage_summary

    report = run_recommendations(ctx)
    state.reports["recommendations"] = report
    return stage_summary(report)


def profiles(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.profiles.indexer import activate_generation, embedded_store, index_profiles

    if ctx.workspace_of is not None:
        # On AWS the commit of gold.customer_profile starts the profile_indexer Lambda, which loads
        # it into OpenSearch; an embedded store in a throwaway workspace would serve nobody.
        from rfmlake.profiles.build import write_profile_table

        ref = write_profile_table(ctx.lake)
        return {"profiles": ctx.lake.count_rows(ref), "source_version": ref.version,
                "indexed_by": "profile_indexer (on the commit of gold.customer_profile)"}
    # Loaded now, swapped in for the API's readers when the run commits (never for a failed run).
    store = embedded_store(ctx.lake)
    scratch = ctx.lake.system_dir / "tmp" / f"{ctx.run_id}-profiles"  # DuckDB spills here past the limit
    try:
        report = index_profiles(ctx.lake, store, activate=False, memory_limit=ctx.settings.duckdb_memory_limit,
                                temp_dir=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    state.after_commit.append(partial(activate_generation, store, report.generation))
    state.reports["profiles"] = report
    return report.to_dict()


def activate(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.activation.run import activate as run_activation

    # Destinations from RFMLAKE_ACTIVATION_DESTINATIONS; the local default is the file export.
    reports = run_activation(ctx.lake)
    state.reports["activate"] = reports
    return {r.destination: {"status": r.status, "sent": r.sent, "failed": r.failed,
                            "skipped": dict(sorted(r.skipped.items()))} for r in reports}


def journeys(ctx: RunContext, state: RunState) -> dict[str, Any]:
    from rfmlake.journeys.run import run_journeys

    # On AWS `ctx.lake` is a workspace copy: the journey state, its journal and the outbox live on
    # the lake itself, so a stage killed mid-send resumes after what it sent (docs/journeys.md).
    run = run_journeys(ctx.lake, ctx.settings, state_location=ctx.workspace_of)
    state.reports["journeys"] = run
    return run.to_dict()
