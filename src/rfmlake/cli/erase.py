"""`rfmlake erase`: remove one customer from every zone of the lake (right to erasure)."""

from __future__ import annotations

import argparse

from rich.console import Console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "erase",
        help="erase a customer from every zone, audit it, and suppress them in later runs",
        description="Remove a customer's rows from bronze (incl. quarantine), silver and gold, purge older "
        "table versions that still hold them, append an audit entry (tokens only) and add them to the "
        "suppression list.",
    )
    # str, not Path: an s3:// location must reach Lake intact to be refused with a clear message
    parser.add_argument("--lake", required=True, metavar="DIR", help="lake folder")
    parser.add_argument("--customer-id", required=True, metavar="ID")
    parser.add_argument("--email", metavar="ADDRESS", help="the customer's email, to find raw rows without the id")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rfmlake.governance.erasure import audit_path, erase_customer
    from rfmlake.lake import Lake

    lake = Lake(args.lake)
    report = erase_customer(lake, args.customer_id, email=args.email)
    console = Console()
    console.print(f"erased customer (token {report.customer_id_token[:12]}...): {report.total_rows:,} rows "
                  f"from {len(report.rows_removed)} tables, {report.versions_purged} old versions purged")
    for table, rows in sorted(report.rows_removed.items()):
        console.print(f"  {table:<40} {rows:>8,}")
    for target, rows in sorted(report.downstream_removed.items()):
        console.print(f"  {target:<40} {rows:>8,}", soft_wrap=True)
    console.print(f"audit entry appended to {audit_path(lake)}", soft_wrap=True)
    return 0
