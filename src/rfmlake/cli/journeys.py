"""`rfmlake journeys validate|run|report|simulate`: journeys as code (docs/journeys.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rfmlake.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "journeys", help="journeys: segment changes trigger messages, with holdouts and measured lift",
        description="Journeys as code (journeys/*.yaml): validate them, advance them on a lake, report their "
                    "results, simulate their effect. docs/journeys.md is the reference.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", type=Path, metavar="DIR",
                       help="journeys folder (default: settings journeys.dir, $RFMLAKE_JOURNEYS_DIR, ./journeys)")
        p.add_argument("--config", type=Path, metavar="FILE", help="settings YAML")

    validate = actions.add_parser("validate", help="check the journey files and their templates",
                                  description="Load and check every journey file; errors name the file and key.")
    common(validate)
    validate.set_defaults(func=run_validate)

    advance = actions.add_parser("run", help="advance every journey as of the lake's latest run",
                                 description="Entries from segment changes, waits, sends (exactly once per "
                                             "customer and step), then gold.journey_assignments and "
                                             "gold.journey_results. Sends held for quiet hours go out on the "
                                             "next run outside them.")
    advance.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    common(advance)
    advance.add_argument("--json", action="store_true", help="print the run report as JSON")
    advance.set_defaults(func=run_advance)

    report = actions.add_parser("report", help="conversion, lift and revenue per journey and variant",
                                description="gold.journey_results: the latest day of each journey (or every day).")
    report.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    report.add_argument("--journey", metavar="ID", help="one journey")
    report.add_argument("--all-days", action="store_true", help="every day the journey ran, not only the latest")
    report.add_argument("--json", action="store_true", help="the rows as JSON")
    report.set_defaults(func=run_report)

    simulate = actions.add_parser("simulate", help="plant orders with a known uplift for a journey's treated group",
                                  description="Write a landing orders file in which every customer the journey "
                                              "admitted orders within its goal window with probability BASE, "
                                              "treated ones with BASE + UPLIFT; the next run measures the lift.")
    simulate.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    simulate.add_argument("--landing", required=True, type=Path, metavar="DIR", help="landing folder")
    simulate.add_argument("--journey", required=True, metavar="ID")
    simulate.add_argument("--uplift", required=True, type=float, help="added conversion probability, e.g. 0.05")
    simulate.add_argument("--base-rate", type=float, default=0.05, help="conversion probability without the journey")
    simulate.add_argument("--seed", type=int, default=7)
    common(simulate)
    simulate.set_defaults(func=run_simulate)


def _settings(args: argparse.Namespace):  # noqa: ANN202 - Settings
    from rfmlake.settings import load_settings

    return load_settings(args.config)


def _journeys(args: argparse.Namespace):  # noqa: ANN202 - (Settings, JourneySet)
    from rfmlake.journeys.run import default_journeys_dir, load

    settings = _settings(args)
    folder = args.dir or settings.journeys.dir or default_journeys_dir()
    if folder is None:
        raise ConfigError("no journeys folder: pass --dir, set journeys.dir in the settings or "
                          "$RFMLAKE_JOURNEYS_DIR, or run where ./journeys exists")
    journeys = load(settings, folder)
    assert journeys is not None
    return settings, journeys


def run_validate(args: argparse.Namespace) -> int:
    _, journeys = _journeys(args)
    print(f"{journeys.folder}: {len(journeys.journeys)} journey(s), {len(journeys.templates)} email template(s)")
    for journey in journeys.journeys:
        variants = ", ".join(f"{v.id} {v.percent:g}%" for v in journey.variants)
        steps = " -> ".join(f"{s.id} ({s.action})" for s in journey.steps)
        print(f"  {journey.id} [{journey.status}]: {journey.trigger.type}; holdout {journey.holdout_percent:g}%, "
              f"variants {variants}; goal: completed order within {journey.goal.within_days} days")
        print(f"    steps: {steps}")
    return 0


def run_advance(args: argparse.Namespace) -> int:
    from rfmlake.errors import PipelineError
    from rfmlake.journeys.run import require_local_lake, run_journeys
    from rfmlake.lake.locks import lake_lock

    settings, journeys = _journeys(args)
    lake = require_local_lake(args.lake)
    # One writer per lake: a pipeline run or an erasure waits for nobody, it fails fast.
    with lake_lock(lake, PipelineError(f"another rfmlake run or erasure is using the lake at {lake}")):
        lake.recover()
        run = run_journeys(lake, settings, folder=journeys.folder)
    print(json.dumps(run.to_dict(), indent=2, default=str) if args.json else run.render())
    return 1 if run.tick is not None and run.tick.failed else 0


def run_report(args: argparse.Namespace) -> int:
    from rfmlake.journeys.report import load_results, render_results
    from rfmlake.journeys.run import require_local_lake

    rows = load_results(require_local_lake(args.lake), args.journey, all_days=args.all_days)
    print(json.dumps(rows, indent=2, default=str) if args.json else render_results(rows))
    return 0


def run_simulate(args: argparse.Namespace) -> int:
    from rfmlake.generate.journey_effect import plant_journey_effect
    from rfmlake.journeys.run import require_local_lake

    settings, journeys = _journeys(args)
    effect = plant_journey_effect(require_local_lake(args.lake), args.landing, journeys.get(args.journey),
                                  uplift=args.uplift, base_rate=args.base_rate, seed=args.seed,
                                  currency=settings.reporting_currency)
    print(f"{effect.file}: {effect.treated_orders} orders from {effect.treated} treated customers "
          f"(rate {effect.base_rate:g} + uplift {effect.uplift:g}), {effect.holdout_orders} from {effect.held_out} "
          f"held out (rate {effect.base_rate:g}), dated {effect.first_order_date} to {effect.last_order_date}; "
          "run the pipeline again to measure the lift")
    return 0
