"""`rfmlake activate`: push segment membership to marketing tools (incremental, idempotent, resumable)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rfmlake.activation.config import DESTINATION_KINDS
from rfmlake.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "activate",
        help="push segments to marketing tools (file export, EventBridge, SES, End User Messaging SMS, "
             "Connect Customer Profiles)",
        description="Sync gold.customer_rfm membership to destinations: only what changed since the last "
                    "successful sync, only consenting customers with a usable address. Destination settings "
                    "come from RFMLAKE_* environment variables (docs/activation.md). 'pinpoint' is RETIRED: AWS "
                    "ended Amazon Pinpoint's engagement features on 2026-10-30; use ses (email), sms (AWS End "
                    "User Messaging SMS) or customer_profiles (Amazon Connect); pinpoint runs only with "
                    "RFMLAKE_PINPOINT_ACKNOWLEDGE_RETIRED=true.",
    )
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--destination", action="append", choices=DESTINATION_KINDS, metavar="NAME",
                        help=f"destination (repeatable; one of {', '.join(DESTINATION_KINDS)} (pinpoint: "
                             "retired); default: RFMLAKE_ACTIVATION_DESTINATIONS or file)")
    parser.add_argument("--full", action="store_true", help="resend every member, not only the changes")
    parser.add_argument("--audience", metavar="ID",
                        help="sync only a saved audience of gold.audiences (built in `rfmlake app`), under its name")
    parser.add_argument("--json", action="store_true", help="print the sync reports as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rfmlake.activation.run import activate
    from rfmlake.errors import PipelineError
    from rfmlake.lake import Lake
    from rfmlake.lake.locks import lake_lock

    if not args.lake.is_dir():
        raise ConfigError(f"--lake {args.lake} is not a folder")
    lake = Lake(args.lake)
    # The lake's one lock, as a pipeline run and an erasure take it: a sync never starts while an
    # erasure is under way (nor an erasure while a sync is), and never reads a run's half-done tables.
    with lake_lock(lake, PipelineError(f"another rfmlake run, sync or erasure is using the lake at {lake}")):
        lake.recover()
        reports = activate(lake, args.destination, full=args.full, audience=args.audience)
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for report in reports:
            print(report.render())
    return 1 if any(r.failed for r in reports) else 0
