"""Glue 5.0 job (and local script): bronze -> silver tables, quarantine, reconciliation, merged by
key for what changed, and the run's quarantine metrics (`--metrics cloudwatch` on AWS), on Spark.
Logic: rfmlake.ingest."""

import json
import sys

from rfmlake.errors import RfmlakeError
from rfmlake.ingest.engine import SparkEngine
from rfmlake.ingest.jobs import build_context, parse_job_args, run_bronze_to_silver
from rfmlake.ingest.spark import get_spark
from rfmlake.lake.locks import lake_lock


def main(argv: list[str]) -> int:
    try:
        args = parse_job_args(argv, require_landing=False)
        ctx = build_context(args)
        with lake_lock(ctx.lake, RfmlakeError(f"another stage, sync or erasure is using the lake at {ctx.lake}"),
                       owner=ctx.run_id):
            engine = SparkEngine(get_spark("rfmlake-bronze-to-silver"))
            report, metrics = run_bronze_to_silver(engine, ctx, metrics=args.metrics)
    except RfmlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({**report.to_dict(), "metrics": metrics}, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
