"""`rfmlake app`: the marketing app on localhost; `rfmlake app create-user` adds a user."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path

from rfmlake.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="the marketing app: segments, audiences, journeys and runs in a browser",
        description="Serve the marketing app on localhost (docs/app.md). Add a user first: "
                    "rfmlake app create-user --lake DIR --name NAME --role marketer.")
    parser.add_argument("--lake", type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8010, help="port (default 8010)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings YAML")
    parser.add_argument("--journeys", type=Path, metavar="DIR",
                        help="journeys folder (default: settings journeys.dir, $RFMLAKE_JOURNEYS_DIR, ./journeys)")
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    create = actions.add_parser("create-user", help="add a user (or, with --replace, change one)",
                                description="Add a user of the local app. The password is read from the "
                                            "terminal, or from standard input with --password-stdin.")
    create.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    create.add_argument("--name", required=True, help="user name")
    create.add_argument("--role", required=True, choices=("analyst", "marketer", "admin"))
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.add_argument("--replace", action="store_true", help="replace an existing user's password and role")
    create.set_defaults(func=run_create_user)


def _lake(path: Path | None):  # noqa: ANN202 - a Lake
    from rfmlake.lake import Lake

    if path is None:
        raise ConfigError("--lake DIR is required")
    if not path.is_dir():
        raise ConfigError(f"--lake {path} is not a folder")
    return Lake(path)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from rfmlake.app.auth import LocalUsers
    from rfmlake.app.local import local_app
    from rfmlake.settings import load_settings

    lake = _lake(args.lake)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    if not LocalUsers(lake).names():
        raise ConfigError(f"the app at {lake} has no users yet: rfmlake app create-user --lake {args.lake} "
                          "--name NAME --role admin")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = local_app(lake, load_settings(args.config), journeys_dir=args.journeys)
    print(f"rfmlake app on http://{args.host}:{args.port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def run_create_user(args: argparse.Namespace) -> int:
    from rfmlake.app.local import create_user

    lake = _lake(args.lake)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.isatty(0):
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        raise ConfigError("no terminal to read the password from: pass --password-stdin")
    user = create_user(lake, args.name, args.role, password, replace=args.replace)
    print(f"user {user.name} ({user.role}) can sign in to the app of {lake}")
    return 0
