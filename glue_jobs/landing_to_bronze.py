"""Glue 5.0 job (and local script): new or changed landing files -> bronze partitions, on Spark.
`--full true` reads every landing file again. Logic: rfmlake.ingest."""

import sys

from rfmlake.errors import RfmlakeError
from rfmlake.ingest.engine import SparkEngine
from rfmlake.ingest.jobs import build_context, parse_job_args, run_landing_to_bronze
from rfmlake.ingest.spark import get_spark


def main(argv: list[str]) -> int:
    try:
        ctx = build_context(parse_job_args(argv))
        results, plan = run_landing_to_bronze(SparkEngine(get_spark("rfmlake-landing-to-bronze")), ctx)
    except RfmlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(plan.read)} landing files read, {len(plan.unchanged)} unchanged")
    for _name, result in sorted(results.items()):
        print(f"{result.table}: {result.rows} rows from {result.files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
