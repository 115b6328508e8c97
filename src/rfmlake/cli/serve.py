"""`rfmlake serve`: the profile API over the lake's embedded profile store (uvicorn, localhost)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rfmlake.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the profile API locally",
        description="Serve the profile API over the lake's profiles. Every route but /health needs a key, "
        "the OpenAPI document (/openapi.json, UI at /docs) too unless --public-schema. "
        "Create a key first: rfmlake profiles create-key --lake DIR --name NAME.",
    )
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="settings YAML")
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second per key (default 50)")
    parser.add_argument("--burst", type=int, default=100, help="burst size per key (default 100)")
    parser.add_argument("--public-schema", action="store_true",
                        help="serve /openapi.json and /docs without a key (default: they need one)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from rfmlake.lake import Lake
    from rfmlake.profiles.local import local_app
    from rfmlake.profiles.server import server_config
    from rfmlake.settings import load_settings

    if not args.lake.is_dir():
        raise ConfigError(f"--lake {args.lake} is not a folder")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {args.port}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = local_app(Lake(args.lake), load_settings(args.config), rate_per_second=args.rate, burst=args.burst,
                    public_schema=args.public_schema)
    # Bounded request heads (431 beyond them); uvicorn's access log, which prints query strings, off.
    uvicorn.Server(server_config(app, host=args.host, port=args.port)).run()
    return 0
