"""`rfmlake demo`: generate sample data, run the whole pipeline, show what came out and where."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from rich.console import Console

from rfmlake.cli.output import print_summary
from rfmlake.cli.run import execute


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="generate sample data and run the whole pipeline on it",
        description="Generate seeded sample data (with bad rows) into DIR/landing and run the pipeline "
        "into DIR/lake.",
    )
    parser.add_argument("--dir", type=Path, default=Path("demo"), metavar="DIR", help="demo folder (default ./demo)")
    parser.add_argument("--order-lines", type=int, default=20_000, metavar="N", help="order lines to generate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--clean", action="store_true",
                        help="generate no bad rows (default: inject some of every kind)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings YAML")
    parser.set_defaults(func=run)


def _cli_hint() -> str:
    """How the user can call rfmlake from where they stand: bare when on PATH, else the venv's script."""
    script = Path(sys.executable).with_name("rfmlake")
    if shutil.which("rfmlake") == str(script):
        return "rfmlake"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


DEMO_JOURNEY = "win_back_at_risk"
# What the demo plants for the treated (docs/journeys.md): without the journey 10% of the customers
# who entered order within the goal window, with it 35%.
DEMO_BASE_RATE, DEMO_UPLIFT = 0.10, 0.25


def run(args: argparse.Namespace) -> int:
    from rfmlake.generate import generate_landing
    from rfmlake.journeys.run import default_journeys_dir

    console = Console()
    landing, lake = args.dir / "landing", args.dir / "lake"
    console.print(f"[bold]Generating[/] {args.order_lines:,} order lines of sample data into {landing} ...")
    generated = generate_landing(landing, order_lines=args.order_lines, seed=args.seed,
                                 bad_rows=not args.clean, overwrite=True)
    console.print("  " + ", ".join(f"{entity}: {rows:,}" for entity, rows in generated.rows_per_entity.items()))
    journeys = default_journeys_dir()
    summary = execute(landing, lake, as_of=None, config=args.config, refit=False, console=console,
                      journeys_dir=journeys)
    print_summary(summary, console)
    if journeys is not None and (journeys / f"{DEMO_JOURNEY}.yaml").is_file():
        summary = _demo_journey(args, landing, lake, journeys, console)
    run_dir = lake / "_system" / "runs" / summary.run_id
    console.print()
    console.print("[bold]Where everything is[/]")
    console.print(f"  landing files      {landing}")
    console.print(f"  lake (Parquet)     {lake}/{{bronze,silver,gold}}/<table>/")
    console.print(f"  run report         {run_dir}/summary.json", soft_wrap=True)
    console.print(f"  quality reports    {run_dir}/quality_silver.txt", soft_wrap=True)
    console.print(f"                     {run_dir}/quality_gold.txt", soft_wrap=True)
    console.print(f"  segmentation model {lake}/_system/models/segmentation/")
    if journeys is not None:
        console.print(f"  journeys           {journeys}/*.yaml; messages in {lake}/gold/_journeys/outbox/")
    console.print()
    from rfmlake.governance.report import print_persona_access

    print_persona_access(console)
    console.print()
    cli = _cli_hint()
    console.print("[bold]Try[/]")
    for query in (
        "SELECT rfm_segment, count(*) AS customers FROM gold.customer_rfm GROUP BY 1 ORDER BY 2 DESC",
        "SELECT entity, reason, count(*) AS rows FROM bronze.quarantine GROUP BY ALL ORDER BY ALL",
        "SELECT cluster_label, avg(recency_days), avg(frequency), avg(monetary) FROM gold.customer_rfm GROUP BY 1",
    ):
        console.print(f'  {cli} sql --lake {lake} "{query}"', soft_wrap=True)
    for command, what in (("dashboard --lake {lake} --open", "the segment dashboard (one HTML page)"),
                          ("report --lake {lake}", "segmentation quality report of this run"),
                          ("journeys report --lake {lake}", "the demo journey's conversion and lift")):
        console.print(f"  {cli} {command.format(lake=lake):<40} # {what}", soft_wrap=True)
    from rfmlake.lake import Lake
    from rfmlake.profiles.local import curl_hint

    console.print()
    console.print("[bold]Query a customer profile over HTTP[/]")
    for line in curl_hint(Lake(lake), cli):
        console.print(f"  {line}", soft_wrap=True, markup=False)
    return 0


def _demo_journey(args: argparse.Namespace, landing: Path, lake: Path, journeys: Path, console: Console):  # noqa: ANN202
    """The first run admitted customers entering At Risk into the demo journey and emailed the
    treated; plant orders with a known uplift for them (rfmlake.generate.journey_effect), run again
    (the new orders file is all that is read), and show what the journey measured."""
    from rfmlake.generate.journey_effect import plant_journey_effect
    from rfmlake.journeys.report import load_results, render_results
    from rfmlake.journeys.run import load
    from rfmlake.lake import Lake
    from rfmlake.settings import load_settings

    settings = load_settings(args.config, {"journeys.dir": str(journeys)})
    journey_set = load(settings)
    assert journey_set is not None
    effect = plant_journey_effect(Lake(lake), landing, journey_set.get(DEMO_JOURNEY), uplift=DEMO_UPLIFT,
                                  base_rate=DEMO_BASE_RATE, seed=args.seed, currency=settings.reporting_currency)
    console.print()
    console.print(f"[bold]Simulating the journey's effect[/]: {effect.treated_orders + effect.holdout_orders} orders "
                  f"in {effect.file}, dated {effect.first_order_date} to {effect.last_order_date}: the "
                  f"{effect.held_out} held-out customers order at {DEMO_BASE_RATE:.0%}, the {effect.treated} treated "
                  f"at {DEMO_BASE_RATE + DEMO_UPLIFT:.0%} (a planted lift of {DEMO_UPLIFT * 100:.0f} points)")
    summary = execute(landing, lake, as_of=None, config=args.config, refit=False, console=console,
                      journeys_dir=journeys)
    console.print(f"[bold]Run {summary.run_id}[/] finished in {summary.seconds:.1f}s; as-of date {summary.as_of}")
    stage = next(s for s in summary.stages if s.name == "journeys")
    deferred = stage.summary.get("deferred") or {}
    if deferred:
        console.print(f"  held for quiet hours until the next run: {deferred}", markup=False)
    console.print()
    console.print(f"[bold]Journey results[/] (gold.journey_results; planted lift {DEMO_UPLIFT * 100:+.0f} points)")
    console.print(render_results(load_results(Lake(lake), DEMO_JOURNEY)), markup=False, soft_wrap=True)
    return summary
