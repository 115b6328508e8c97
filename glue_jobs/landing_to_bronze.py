"""Glue 5.0 job (and local script): new or changed landing files -> bronze partitions, on Spark.
`--full true` reads every landing file again. Logic: rfmlake.ingest."""

import sys

from rfmlake.contract.landing import scan_landing
from rfmlake.errors import RfmlakeError
from rfmlake.ingest.bronze import load_bronze
from rfmlake.ingest.engine import SparkEngine
from rfmlake.ingest.jobs import build_context, ingested_stamps, parse_job_args
from rfmlake.ingest.spark import get_spark
from rfmlake.lake.locks import lake_lock


def main(argv: list[str]) -> int:
    try:
        ctx = build_context(parse_job_args(argv))
        with lake_lock(ctx.lake, RfmlakeError(f"another stage, sync or erasure is using the lake at {ctx.lake}"),
                       owner=ctx.run_id):
            ctx.lake.recover()  # a killed run's half-applied commit is rolled back first
            # Before Spark starts: a bad landing fails in a second.
            files = scan_landing(ctx.landing_dir, ingested=ingested_stamps(ctx))
            engine = SparkEngine(get_spark("rfmlake-landing-to-bronze"))
            results, plan = load_bronze(engine, ctx, files, full=ctx.full)
    except RfmlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(plan.read)} landing files read, {len(plan.unchanged)} unchanged")
    for _name, result in sorted(results.items()):
        print(f"{result.table}: {result.rows} rows from {result.files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
