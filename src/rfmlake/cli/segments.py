"""`rfmlake segments diff`: the from x to segment migration matrix between two as_of dates."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from rfmlake.lake import Lake

# The CLI parses arguments before anything heavy is needed; the segmentation package pulls in
# scikit-learn, so it is imported by the command that uses it, not when `rfmlake --help` runs.
DIMENSIONS: tuple[str, ...] = ("rfm_segment", "cluster_label")  # = rfmlake.segmentation.migration.DIMENSIONS


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date in YYYY-MM-DD form") from None


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("segments", help="segment history: migration between runs",
                                   description="Inspect gold.segment_membership_history.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    diff = actions.add_parser("diff", help="from x to segment counts between two as_of dates",
                              description="Customers per (from segment, to segment) between two as_of dates; "
                                          "(new) = entered, (gone) = exited.")
    diff.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    diff.add_argument("--from", dest="from_date", required=True, type=_date, metavar="DATE")
    diff.add_argument("--to", dest="to_date", required=True, type=_date, metavar="DATE")
    diff.add_argument("--by", choices=DIMENSIONS, default="rfm_segment",
                      help="which segmentation (default rfm_segment)")
    diff.set_defaults(func=run_diff)


def run_diff(args: argparse.Namespace) -> int:
    lake = Lake(args.lake)
    from rfmlake.segmentation.history import migration_between
    from rfmlake.segmentation.migration import render_matrix

    # DuckDB joins the two dates' partitions; the rest of the history is never read.
    counts = migration_between(lake, args.from_date, args.to_date, args.by)
    moved = int(counts.loc[counts["from_segment"] != counts["to_segment"], "customers"].sum())
    print(f"{args.by}: {args.from_date.isoformat()} -> {args.to_date.isoformat()} "
          f"({int(counts['customers'].sum())} customers, {moved} changed, entered or exited)")
    print(render_matrix(counts))
    return 0
