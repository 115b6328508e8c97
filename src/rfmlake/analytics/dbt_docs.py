"""The documented semantic layer as a website: `dbt docs generate` for the lake (target local) into
the lake's system folder, and a small static server for it on localhost (`rfmlake docs`)."""

from __future__ import annotations

import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rfmlake.errors import PipelineError, RfmlakeError
from rfmlake.lake import Lake
from rfmlake.modeling.dbt_runner import dbt_dir, dbt_vars, duckdb_path, invoke_dbt, prepare_silver_views
from rfmlake.modeling.project import find_project_dir, write_profiles
from rfmlake.settings import Settings


def docs_dir(lake: Lake) -> Path:
    return dbt_dir(lake) / "docs"


def generate_docs(lake: Lake, settings: Settings | None = None) -> Path:
    """Run `dbt docs generate --static` against the lake's dbt database. Returns the folder holding
    index.html, static_index.html (one self-contained file), manifest.json and catalog.json."""
    settings = settings or Settings()
    if not lake.root.is_dir():
        raise RfmlakeError(f"no lake at {lake} (run `rfmlake run` or `rfmlake demo` first)")
    work = dbt_dir(lake)
    database = duckdb_path(lake)
    profiles_dir = work / "profiles"
    out = docs_dir(lake)
    write_profiles(profiles_dir, database, settings.prefix)
    prepare_silver_views(lake, database, settings.rfm.source)
    success, _, error = invoke_dbt(
        ["docs", "generate", "--static", "--vars", json.dumps(dbt_vars(settings, None, "local"))],
        project_dir=find_project_dir(), profiles_dir=profiles_dir, target="local",
        target_path=out, log_path=work / "logs" / "docs",
    )
    if not success or not (out / "static_index.html").is_file():
        raise PipelineError(f"dbt docs generate failed: {error or 'no static_index.html written'} "
                            f"(log: {work / 'logs' / 'docs' / 'dbt.log'})")
    return out


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        return


def docs_server(directory: Path, port: int = 8080, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A static file server for the docs folder on localhost (port 0 = any free port)."""
    if not (directory / "index.html").is_file():
        raise RfmlakeError(f"no dbt docs in {directory}: generate them first (`rfmlake docs --no-serve`)")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise RfmlakeError(f"cannot serve the docs on {host}:{port}: {exc.strerror} (try --port)") from None
