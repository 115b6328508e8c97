"""`rfmlake erase`: remove one customer from every zone of the lake (right to erasure)."""

from __future__ import annotations

import argparse
import os

from rich.console import Console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "erase",
        help="erase a customer from every zone, audit it, and suppress them in later runs",
        description="Remove a person from every copy the lake holds: bronze (incl. quarantine), silver, gold, "
        "older table versions, the dbt working database, the profile store, activation exports and state, journeys, "
        "run reports. On a lake on S3 also: noncurrent object versions, dbt-athena's unread data, Glue table "
        "versions, Athena query results (--athena-results) and the OpenSearch profile store "
        "(RFMLAKE_OPENSEARCH_ENDPOINT); docs/governance.md lists what it cannot reach. Their customer id, email, "
        "phone and order ids go on the suppression list (tokens only), so later runs keep them out; an audit entry "
        "(tokens only) is appended. Takes the lake's run lock.",
    )
    # str, not Path: an s3:// location must reach Lake intact
    parser.add_argument("--lake", required=True, metavar="DIR", help="lake folder or s3://bucket/prefix")
    parser.add_argument("--customer-id", required=True, metavar="ID")
    parser.add_argument("--email", metavar="ADDRESS", help="the customer's email, to find raw rows without the id")
    parser.add_argument("--allow-missing", action="store_true",
                        help="an id the lake does not hold is still added to the suppression list (default: an error)")
    parser.add_argument("--config", metavar="FILE",
                        help="settings YAML (a lake on S3: the prefix naming its Glue databases)")
    parser.add_argument("--athena-results", metavar="S3URI",
                        help="a lake on S3: Athena's query result location, emptied (default: "
                             "RFMLAKE_ATHENA_S3_STAGING_DIR; unset: left alone)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rfmlake.governance.erasure import AUDIT_LOG, erase_customer
    from rfmlake.lake import open_lake
    from rfmlake.lake.storage import is_s3
    from rfmlake.settings import load_settings

    settings = load_settings(args.config)
    lake = open_lake(args.lake, settings)
    profile_store = athena_results = None
    if is_s3(args.lake):
        from rfmlake.governance.erasure_aws import athena_results_from_env
        from rfmlake.profiles.aws import ENDPOINT_ENV, store_from_env

        athena_results = args.athena_results or athena_results_from_env()
        profile_store = store_from_env() if os.environ.get(ENDPOINT_ENV) else None
    report = erase_customer(lake, args.customer_id, email=args.email, allow_missing=args.allow_missing,
                            profile_store=profile_store, athena_results=athena_results, settings=settings)
    console = Console()
    console.print(f"erased customer (token {report.customer_id_token[:12]}...): {report.total_rows:,} rows "
                  f"from {len(report.rows_removed)} tables, {report.versions_purged} old versions purged; "
                  f"{report.emails_found} more email(s) and {report.phones_found} phone(s) of theirs suppressed")
    if report.other_customer_ids:
        console.print(f"other customer ids with their email or phone: {', '.join(report.other_customer_ids)} "
                      "(those records were removed; erase the ids too if they are the same person)", soft_wrap=True)
    if report.person_customer_ids:
        console.print(f"customer ids the identity graph joined to them: {', '.join(report.person_customer_ids)} "
                      "(their person's gold rows were removed; erase the ids too if they are the same person, "
                      "else the next run rebuilds them as people of their own)", soft_wrap=True)
    if report.total_rows == 0:
        console.print("[yellow]no rows held this customer[/]: they are on the suppression list for later runs")
    for table, rows in sorted(report.rows_removed.items()):
        console.print(f"  {table:<40} {rows:>8,}")
    for table, rows in sorted(report.rows_added.items()):
        console.print(f"  {table:<40} {rows:>+8,} (lineage only, reason erased_customer)")
    for target, rows in sorted(report.downstream_removed.items()):
        console.print(f"  {target:<40} {rows:>8,}", soft_wrap=True)
    for target, count in sorted(report.aws_removed.items()):
        console.print(f"  {target:<40} {count:>8,}", soft_wrap=True)
    if is_s3(args.lake) and profile_store is None:
        console.print(f"[yellow]{ENDPOINT_ENV} is not set[/]: the OpenSearch profile store was not erased")
    if is_s3(args.lake) and athena_results is None:
        console.print("[yellow]no Athena results location given[/]: Athena's query results were not emptied")
    console.print(f"audit entry appended to {lake.system_uri(*AUDIT_LOG)}", soft_wrap=True)
    return 0
