"""Glue 5.0 job (and local script): landing files -> bronze tables. Logic: rfmlake.ingest."""

import sys

from rfmlake.contract.landing import scan_landing
from rfmlake.errors import RfmlakeError
from rfmlake.ingest.bronze import load_bronze
from rfmlake.ingest.jobs import build_context, parse_job_args
from rfmlake.ingest.spark import get_spark


def main(argv: list[str]) -> int:
    try:
        ctx = build_context(parse_job_args(argv))
        files = scan_landing(ctx.landing_dir)  # before Spark starts: a bad landing fails in a second
        results = load_bronze(get_spark("rfmlake-landing-to-bronze"), ctx, files)
    except RfmlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for _name, result in sorted(results.items()):
        print(f"{result.table}: {result.rows} rows from {result.files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
