"""Job runners behind the Glue entry scripts and the local pipeline: argument parsing (Glue's
getResolvedOptions when awsglue is importable, argparse otherwise) and the ingest run on an engine
(rfmlake.ingest.engine: DuckDB locally, Spark on Glue)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from rfmlake.contract.landing import scan_landing
from rfmlake.ingest.bronze import BronzeResult, IngestPlan, load_bronze, read_manifest
from rfmlake.ingest.engine import Engine
from rfmlake.ingest.silver import SilverReport, conform_silver
from rfmlake.lake import open_lake
from rfmlake.monitoring import metrics_publisher, publish_quarantine_metrics
from rfmlake.pipeline.context import RunContext, check_run_id, new_run_id
from rfmlake.settings import load_settings


@dataclass(frozen=True)
class JobArgs:
    landing: str | None
    lake: str
    config: str | None
    run_id: str | None
    metrics: str | None = None  # the metrics publisher (rfmlake.monitoring); None = RFMLAKE_METRICS
    full: bool = False  # rebuild from every landing file instead of only new or changed ones


def parse_job_args(argv: list[str], require_landing: bool = True) -> JobArgs:
    """`--landing`, `--lake`, `--config`, `--run-id` (Glue spells it `--run_id`), `--metrics`,
    `--full` (Glue: `--full true`)."""
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        getResolvedOptions = None  # noqa: N806 - the Glue function's own name

    if getResolvedOptions is not None:
        # getResolvedOptions rejects absent names, so ask only for the optional ones that were given.
        wanted = ["lake"] + [n for n in ("landing", "config", "run_id", "metrics", "full") if f"--{n}" in argv]
        if require_landing and "landing" not in wanted:
            wanted.append("landing")
        options = getResolvedOptions(argv, wanted)
        return JobArgs(options.get("landing"), options["lake"], options.get("config"), options.get("run_id"),
                       options.get("metrics"), str(options.get("full", "false")).lower() in ("true", "1", "yes"))

    parser = argparse.ArgumentParser(description="rfmlake ingestion job")
    parser.add_argument("--landing", required=require_landing,
                        help="landing folder or s3://bucket/prefix (<landing>/<entity>/...)")
    parser.add_argument("--lake", required=True, help="lake root folder or s3://bucket/prefix")
    parser.add_argument("--config", default=None, help="settings YAML (default: built-in defaults)")
    parser.add_argument("--run-id", "--run_id", dest="run_id", default=None, help="run id for lineage")
    parser.add_argument("--metrics", default=None,
                        help="metrics publisher: local or cloudwatch (default: $RFMLAKE_METRICS, else local)")
    parser.add_argument("--full", action="store_true", help="rebuild from every landing file")
    args, _unknown = parser.parse_known_args(argv[1:])  # Glue adds its own --JOB_NAME etc.
    return JobArgs(args.landing, args.lake, args.config, args.run_id, args.metrics, args.full)


def build_context(args: JobArgs) -> RunContext:
    settings = load_settings(args.config)
    # Kept as given: a local folder or s3://bucket/prefix (Path would fold "s3://" into "s3:/").
    landing = args.landing or "."
    ctx = RunContext(landing_dir=landing, lake=open_lake(args.lake, settings), settings=settings, full=args.full)
    if args.run_id:  # a folder name under _system/runs/ and part of lineage ids: checked like any run id
        ctx.run_id = check_run_id(args.run_id, "--run-id")
    return ctx


def ingested_stamps(ctx: RunContext) -> dict[str, tuple[int, str]] | None:
    """(size, stamp) per landing file already in bronze: unchanged files need no pre-check."""
    if ctx.full:
        return None
    return {path: (e.size, e.modified) for path, e in read_manifest(ctx.lake).items()}


def run_landing_to_bronze(engine: Engine, ctx: RunContext) -> tuple[dict[str, BronzeResult], IngestPlan]:
    ctx.lake.recover()  # a killed run's half-applied commit is rolled back first
    files = scan_landing(ctx.landing_dir, ingested=ingested_stamps(ctx))
    return load_bronze(engine, ctx, files, full=ctx.full)


def run_bronze_to_silver(engine: Engine, ctx: RunContext, *,
                         metrics: str | None = None) -> tuple[SilverReport, dict[str, Any]]:
    """conform_silver, then its quarantine metrics to the configured publisher (the pipeline stage and
    the Glue job both run this). Returns the report and the metrics as recorded in the run report."""
    publisher = metrics_publisher(metrics)  # an unknown publisher fails before any work
    ctx.lake.recover()
    report = conform_silver(engine, ctx, full=ctx.full)
    return report, publish_quarantine_metrics(report, environment=ctx.settings.prefix, publisher=publisher)


def run_ingest(engine: Engine, ctx: RunContext) -> SilverReport:
    """scan landing -> bronze -> silver in one call."""
    run_landing_to_bronze(engine, ctx)  # (rolls back a killed run's half-applied commit first)
    return conform_silver(engine, ctx, full=ctx.full)


__all__ = ["JobArgs", "build_context", "new_run_id", "parse_job_args", "run_bronze_to_silver", "run_ingest",
           "run_landing_to_bronze"]
