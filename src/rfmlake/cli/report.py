"""`rfmlake report`: the segmentation quality report of a run (JSON + self-contained HTML)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rfmlake.reporting import write_quality_report


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="segmentation quality report of a run (HTML + JSON)",
        description="Write the segmentation quality report of a run: segmentation_quality.json in the run "
                    "folder and a self-contained HTML page (k selection curve, centroids, segment sizes and "
                    "revenue share, score distributions, value model fit and calibration, identity resolution "
                    "and, against ground truth, its merge precision and recall). Prints the HTML path.",
    )
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--run", dest="run_id", metavar="RUN_ID",
                        help="run id (a folder of <lake>/_system/runs); default the latest successful run")
    parser.add_argument("--out", type=Path, metavar="FILE",
                        help="where to write the HTML (default <run folder>/segmentation_quality.html)")
    parser.add_argument("--truth", type=Path, metavar="FILE",
                        help="identity ground truth (the generator's _identity_truth.json) to measure merge "
                             "precision and recall against; default: that file in the run's landing folder, if any")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    written = write_quality_report(args.lake, args.run_id, args.out, truth=args.truth)
    print(f"json: {written.json_path}", file=sys.stderr)
    print(written.html_path)
    return 0
