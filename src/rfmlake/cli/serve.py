"""`rfmlake serve`: the profile API over the lake's embedded profile store (uvicorn, localhost)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rfmlake.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the profile API locally",
        description="Serve the profile API (OpenAPI at /docs and /openapi.json) over the lake's profiles. "
        "Create a key first: rfmlake profiles create-key --lake DIR --name NAME.",
    )
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings YAML")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second per key (default 50)")
    parser.add_argument("--burst", type=int, default=100, help="burst size per key (default 100)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from rfmlake.lake import Lake
    from rfmlake.profiles.local import local_app
    from rfmlake.settings import load_settings

    if not args.lake.is_dir():
        raise ConfigError(f"--lake {args.lake} is not a folder")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = local_app(Lake(args.lake), load_settings(args.config), rate_per_second=args.rate, burst=args.burst)
    # uvicorn's access log prints query strings (an email lookup carries the address): off.
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0
