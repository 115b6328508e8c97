"""`rfmlake` entry point: parse arguments, dispatch to one module per command, turn errors a user
can act on into one clear message and a non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rfmlake import __version__
from rfmlake.errors import RfmlakeError

COMMANDS = ("generate", "run", "demo", "sql", "activate", "journeys", "profiles", "serve", "governance", "erase",
            "segments", "identity", "deploy", "report", "dashboard", "docs", "app")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rfmlake",
        description="RFM customer segmentation on a governed data lake (local or AWS).",
    )
    parser.add_argument("--version", action="version", version=f"rfmlake {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rfmlake.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RfmlakeError as exc:
        print(f"rfmlake {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rfmlake {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
