"""Glue 5.0 job (and local script): identity resolution on the bronze side (it reads the raw CRM
values for fuzzy matching), writing only ids and match evidence to gold.identity_graph,
identity_matches and identity_changes, on Spark. Logic: rfmlake.identity (docs/identity.md)."""

import json
import sys

from rfmlake.errors import RfmlakeError
from rfmlake.identity import resolve_identity
from rfmlake.ingest.engine import SparkEngine
from rfmlake.ingest.jobs import build_context, parse_job_args
from rfmlake.ingest.spark import get_spark


def main(argv: list[str]) -> int:
    try:
        args = parse_job_args(argv, require_landing=False)
        ctx = build_context(args)
        engine = SparkEngine(get_spark("rfmlake-identity"))
        report = resolve_identity(ctx, engine)
    except RfmlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
