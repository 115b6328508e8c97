"""`rfmlake profiles`: index gold.customer_profile into the local store; manage API keys."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rfmlake.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("profiles", help="build and index customer profiles; API keys",
                                   description="Customer profiles: index them, create API keys.")
    sub = parser.add_subparsers(dest="profiles_command", metavar="ACTION", required=True)
    index = sub.add_parser("index", help="build gold.customer_profile and index it into the local store")
    index.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    index.add_argument("--keep", type=int, default=2, help="generations to keep, the active one included")
    index.add_argument("--full", action="store_true",
                       help="load every profile (default: only those changed since the version the store holds)")
    index.set_defaults(func=run_index)
    key = sub.add_parser("create-key", help="create an API key (printed once; only its hash is stored)")
    key.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    key.add_argument("--name", required=True, help="who uses the key")
    key.add_argument("--scope", action="append", choices=("profiles", "email"),
                     help="scopes (repeatable; default both)")
    key.set_defaults(func=run_create_key)


def _lake(path: Path):
    from rfmlake.lake import Lake

    if not path.is_dir():
        raise ConfigError(f"--lake {path} is not a folder")
    return Lake(path)


def run_index(args: argparse.Namespace) -> int:
    from rfmlake.profiles.indexer import index_profiles

    if args.keep < 1:
        raise ConfigError(f"--keep must be >= 1, got {args.keep}")
    report = index_profiles(_lake(args.lake), keep=args.keep, full=args.full)
    print(json.dumps(report.to_dict(), indent=2))
    return 0


def run_create_key(args: argparse.Namespace) -> int:
    from rfmlake.profiles.auth import create_key
    from rfmlake.profiles.local import keys_file

    lake = _lake(args.lake)
    key = create_key(keys_file(lake), args.name, tuple(args.scope or ("profiles", "email")))
    print(key)
    return 0
