"""`rfmlake generate`: write seeded sample landing data (all contract entities) to a folder."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def _end_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2026-10-31: {text!r}") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "generate",
        help="write seeded synthetic landing data for every entity",
        description="Write realistic, seeded synthetic landing files (customers, orders, order_items, "
        "products, events, access_logs, aws_rfm_guidance) plus _generator_manifest.json.",
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="landing folder to write")
    parser.add_argument("--order-lines", type=int, default=20_000, metavar="N",
                        help="clean order lines to write, 50..10000000 (default 20000)")
    parser.add_argument("--seed", type=int, default=7, metavar="N", help="random seed (default 7)")
    parser.add_argument("--bad-rows", action="store_true",
                        help="inject a known number of bad rows of every quarantine reason")
    parser.add_argument("--end-date", type=_end_date, default=date(2026, 10, 31), metavar="YYYY-MM-DD",
                        help="last day of the history (default 2026-10-31)")
    parser.add_argument("--years", type=float, default=3.0, help="years of history (default 3)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace data this command generated in --out before")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    with Progress(
        TextColumn("{task.description:<17}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bars:
        tasks: dict[str, int] = {}

        def report(entity: str, done: int, total: int) -> None:
            if entity not in tasks:
                tasks[entity] = bars.add_task(entity, total=total)
            bars.update(tasks[entity], completed=done, total=total)

        from rfmlake.generate import generate_landing  # numpy/pandas: loaded when generating, not for --help

        summary = generate_landing(
            args.out,
            order_lines=args.order_lines,
            seed=args.seed,
            bad_rows=args.bad_rows,
            end_date=args.end_date,
            years=args.years,
            progress=report,
            overwrite=args.overwrite,
        )
    table = Table(title=f"landing data written in {summary.seconds:.1f} s")
    table.add_column("entity")
    table.add_column("files", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("injected bad rows", justify="right")
    for entity, rows in summary.rows_per_entity.items():
        files = sum(1 for path in summary.files if path.split("/", 1)[0] == entity)
        bad = sum(summary.injected_bad_rows.get(entity, {}).values())
        table.add_row(entity, str(files), f"{rows:,}", f"{bad:,}" if bad else "-")
    console.print(table)
    console.print(f"folder: {summary.out_dir}\nmanifest: {summary.manifest_path}")
    return 0


__all__ = ["add_parser", "run"]
