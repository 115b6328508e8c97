"""`rfmlake docs`: generate the dbt docs site for a lake and serve it on localhost."""

from __future__ import annotations

import argparse
from pathlib import Path

from rfmlake.analytics.dbt_docs import docs_server, generate_docs
from rfmlake.lake import Lake


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "docs",
        help="generate the dbt docs (models, gold columns, exposures) and serve them on localhost",
        description="Run `dbt docs generate` for the lake (into <lake>/_system/dbt/docs) and serve the site.",
    )
    parser.add_argument("--lake", required=True, type=Path, metavar="DIR", help="lake folder")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    parser.add_argument("--no-serve", action="store_true", help="only generate; print where the files are")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = generate_docs(Lake(args.lake))
    print(f"dbt docs written to {out} (single file: {out / 'static_index.html'})")
    if args.no_serve:
        return 0
    server = docs_server(out, args.port)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/  (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
