"""SageMaker processing entry for the segmentation stage (thin: all logic is rfmlake).

    python processing.py --lake LAKE [--config FILE] [--run-id ID]          # the pipeline stage
    python processing.py [--features PATH] [--output DIR] [--model-dir DIR] [--config FILE]   # files

With --lake (what the deployed pipeline's SageMaker job runs, LAKE = s3://bucket/prefix or a folder)
it runs the pipeline's `segmentation` stage against the lake, exactly as `rfmlake run` does
(rfmlake.pipeline.remote): it reads gold.customer_rfm_features and the stored model from the lake,
and commits gold.customer_rfm, the membership history and the migration, and the model it fitted.

Without it, files in and out (SageMaker ProcessingInput/Output, or by hand): reads the RFM features
(gold.customer_rfm_features as Parquet: a file or a folder of files), scores, segments and clusters
them with the stored model in --model-dir (fitting and storing a new one when there is none,
segmentation.refit is set, or the settings changed), and writes customer_rfm.parquet and
segmentation_report.json to --output. Defaults are the SageMaker processing container paths.

Exit code 0 on success, 2 with a one-line message on bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pyarrow.parquet as pq

from rfmlake.errors import RfmlakeError
from rfmlake.segmentation.model import ModelStore
from rfmlake.segmentation.segment import customer_rfm_to_arrow, segment_features
from rfmlake.settings import load_settings

PROCESSING = Path("/opt/ml/processing")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=PROCESSING / "input",
                        help="features Parquet file or folder (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=PROCESSING / "output",
                        help="folder for customer_rfm.parquet and the report (default: %(default)s)")
    parser.add_argument("--model-dir", type=Path, default=PROCESSING / "model",
                        help="segmentation model store (default: %(default)s)")
    parser.add_argument("--config", type=Path, default=None, help="rfmlake settings YAML (default: built-in)")
    parser.add_argument("--lake", default=None,
                        help="run the pipeline stage against this lake (s3://bucket/prefix or a folder)")
    parser.add_argument("--run-id", default=os.environ.get("RFMLAKE_RUN_ID"),
                        help="with --lake: the run id (default: $RFMLAKE_RUN_ID, else a new one)")
    return parser.parse_args(argv)


def run_on_lake(args: argparse.Namespace) -> int:
    from rfmlake.pipeline.remote import run_stage

    config = str(args.config) if args.config else None
    result = run_stage("segmentation", lake=args.lake, config=config, run_id=args.run_id)
    print(json.dumps({"run_id": result["run_id"], "committed": result.get("lake", {}).get("committed"),
                      "summary": result["summary"]}, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.lake:
            return run_on_lake(args)
        if not args.features.exists():
            raise RfmlakeError(f"features input not found: {args.features}")
        settings = load_settings(args.config)
        features = pq.read_table(args.features).to_pandas()
        store = ModelStore(args.model_dir)
        stored = None if settings.segmentation.refit else store.current()
        rfm, model, report = segment_features(features, settings, stored)
        if report.refitted:
            store.save(model)
        args.output.mkdir(parents=True, exist_ok=True)
        pq.write_table(customer_rfm_to_arrow(rfm), args.output / "customer_rfm.parquet", compression="zstd")
        (args.output / "segmentation_report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    except RfmlakeError as exc:
        print(f"segmentation failed: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
