"""`rfmlake run`: every pipeline stage in order, with progress and a run summary."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from rich.console import Console

from rfmlake.cli.output import print_summary, stage_progress
from rfmlake.contract.landing import scan_landing
from rfmlake.errors import ConfigError
from rfmlake.ingest.jobs import ingested_stamps
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.paths import check_run_paths
from rfmlake.pipeline.runner import RunSummary, run_pipeline
from rfmlake.settings import load_settings


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date like 2026-10-31") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the whole pipeline: landing -> bronze -> silver -> gold -> segments",
        description="Run every stage of the pipeline in order over a landing folder, into a lake folder.",
    )
    add_run_arguments(parser)
    parser.add_argument("--input", required=True, type=Path, metavar="DIR", help="landing folder")
    parser.set_defaults(func=run)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder (created if absent)")
    parser.add_argument("--as-of", type=parse_date, metavar="YYYY-MM-DD",
                        help="RFM as-of date (default: the day after the latest order)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings YAML (default: built-in defaults)")
    parser.add_argument("--refit", action="store_true", help="fit a new segmentation model even if one is stored")
    parser.add_argument("--full", action="store_true",
                        help="rebuild bronze and silver from every landing file (default: only new or changed files)")


def execute(landing: Path, lake_dir: Path, *, as_of: date | None, config: Path | None, refit: bool,
            console: Console, full: bool = False, journeys_dir: Path | None = None) -> RunSummary:
    overrides: dict[str, object] = {"segmentation.refit": True} if refit else {}
    if journeys_dir is not None:
        overrides["journeys.dir"] = str(journeys_dir)
    settings = load_settings(config, overrides)
    if lake_dir.exists() and not lake_dir.is_dir():
        raise ConfigError(f"--lake {lake_dir} exists and is not a folder")
    check_run_paths(landing, lake_dir)
    ctx = RunContext(landing_dir=landing.resolve(), lake=Lake(lake_dir), settings=settings, as_of=as_of, full=full)
    # Fail fast on a landing folder that cannot be ingested, before any stage starts; the ingest
    # stage scans again, so a Glue run without this pre-flight is just as safe. Files already in
    # the lake's manifest with the same size and stamp are not opened again.
    scan_landing(landing, ingested=ingested_stamps(ctx))
    console.print(f"[bold]rfmlake run[/] {ctx.run_id}: {ctx.landing_dir} -> {ctx.lake.root}")
    with stage_progress(console) as on_stage:
        return run_pipeline(ctx, on_stage=on_stage)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=False)
    summary = execute(args.input, args.lake, as_of=args.as_of, config=args.config, refit=args.refit,
                      console=console, full=args.full)
    print_summary(summary, console)
    return 0
