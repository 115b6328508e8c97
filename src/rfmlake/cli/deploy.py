"""`rfmlake deploy --env dev [--synth] [--out DIR]`: stand the platform up in AWS (cdk deploy), or
render its CloudFormation templates offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("deploy", help="deploy the platform to AWS (AWS CDK), or --synth templates")
    parser.add_argument("--env", required=True, help="environment: config/<env>.yaml (dev, prod, ...)")
    parser.add_argument("--synth", action="store_true", help="only synthesize templates (no account needed)")
    parser.add_argument("--out", type=Path, default=None, help="folder for --synth output (default: cdk.out/<env>)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rfmlake.deploy import load_environment
    from rfmlake.deploy.cdk import deploy, synth

    environment = load_environment(args.env)  # a bad config fails before node starts
    if args.synth:
        out = args.out or Path("cdk.out") / args.env
        templates = synth(args.env, out)
        for template in templates:
            print(template)
        print(f"synthesized {len(templates)} stacks for {environment.deploy.name} into {out}")
        return 0
    return deploy(args.env)
