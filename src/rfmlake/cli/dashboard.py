"""`rfmlake dashboard`: write the segment dashboard as one static HTML page and optionally open it."""

from __future__ import annotations

import argparse
import webbrowser
from pathlib import Path

from rfmlake.dashboard import write_dashboard
from rfmlake.lake import Lake


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="write the segment dashboard (static HTML, no network) and optionally open it",
        description="Segment sizes, revenue share, RFM heatmap, migration and customer value as one "
                    "self-contained HTML page.",
    )
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="where to write the page (default <lake>/_system/dashboard/index.html)")
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = write_dashboard(Lake(args.lake), args.out).resolve()
    print(f"dashboard written to {path}")
    if args.open and not webbrowser.open(path.as_uri()):
        print(f"no browser found: open {path.as_uri()} yourself")
    return 0
