"""`rfmlake governance validate|plan|apply|show`: Lake Formation as code (lakeformation/*.yaml)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "governance",
        help="validate lakeformation/*.yaml, or plan/apply it to an AWS account's Lake Formation",
        description="Lake Formation as code: LF-tags, tag assignments, persona grants, registered locations.",
    )
    parser.add_argument("action", choices=("validate", "plan", "apply", "show"),
                        help="validate the YAML; plan/apply it to an account; show what each persona sees")
    parser.add_argument("--config-dir", type=Path, metavar="DIR", help="lakeformation folder (default ./lakeformation)")
    parser.add_argument("--profile", help="AWS profile (plan/apply)")
    parser.add_argument("--region", help="AWS region (plan/apply)")
    parser.add_argument("--endpoint-url", metavar="URL", help="Lake Formation/Glue endpoint, e.g. a moto server")
    parser.add_argument("--account-id", metavar="ID", help="AWS account id (overrides account.yaml)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rfmlake.governance.model import load_governance
    from rfmlake.governance.report import persona_access_table

    console = Console()
    config = load_governance(args.config_dir).with_account_id(args.account_id)
    if args.action == "validate":
        console.print(f"governance config is valid: {len(config.personas.personas)} personas, "
                      f"{sum(len(d.tables) for d in config.assignments.databases.values())} tables")
        return 0
    if args.action == "show":
        console.print(persona_access_table(config))
        return 0
    import boto3

    from rfmlake.governance import lakeformation

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    do = lakeformation.apply if args.action == "apply" else lakeformation.plan
    result = do(config, boto3_session=session, endpoint_url=args.endpoint_url, region=args.region)
    console.print(result.describe(), soft_wrap=True, markup=False)
    verb = "applied" if args.action == "apply" else "planned"
    console.print(f"{len(result.changes)} changes {verb}")
    return 0
