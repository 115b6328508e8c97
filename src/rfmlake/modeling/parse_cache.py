"""dbt's parse of the project, kept between lakes and processes.

dbt parses the whole project (models, tests, the adapters' macros) before every command; from
scratch that takes about 3 seconds, more than building the models on a small lake. dbt's own partial
parsing only helps the next command on the same lake: its saved parse (target/partial_parse.msgpack)
is rejected for any other lake because the profile's DuckDB path is part of what it checks, although
no parsed node depends on it.

This module keeps that saved parse in a cache folder, named by everything the parse does depend on:
the dbt and adapter versions, the project's files (path and content), the target, the command-line
vars, the profile with the local database's folder left out, and the environment variables the
project or profile reads. A command whose key is in the cache hands the parsed manifest to dbt
(`dbtRunner(manifest=...)`, dbt's documented way to skip parsing) instead of parsing again. The cache
is an optimisation only: a cache that cannot be read or written is passed over.

The folder is `$RFMLAKE_CACHE_DIR/dbt-parse` (default `~/.cache/rfmlake`, or under XDG_CACHE_HOME);
`RFMLAKE_CACHE_DIR=off` turns it off.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from rfmlake.lake.storage import Storage

log = logging.getLogger(__name__)

CACHE_ENV = "RFMLAKE_CACHE_DIR"
KEEP = 8  # parses kept: one per project version, target and vars in use
PARTIAL_PARSE_FILE = "partial_parse.msgpack"  # the file dbt writes into its target path after parsing
_DISTRIBUTIONS = ("dbt-core", "dbt-adapters", "dbt-duckdb", "dbt-athena-community")  # whose macros dbt parses
_SKIPPED_DIRS = {"target", "logs"}
_ENV_VAR = re.compile(r"""env_var\(\s*['"]+([A-Za-z0-9_]+)['"]""")


def cache_dir() -> Path | None:
    """The folder of cached parses, or None when caching is off."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    if configured.lower() == "off":
        return None
    if configured:
        root = Path(configured)
    else:
        try:
            root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rfmlake"
        except RuntimeError:  # no home folder (a container's arbitrary user): no cache
            return None
    return root / "dbt-parse"


def _project_files(project_dir: Path) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(project_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith("."))
        files += [Path(folder) / name for name in sorted(names) if not name.startswith(".")]
    return files


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def parse_key(project_dir: Path, profiles_dir: Path, target: str, args: list[str]) -> str | None:
    """The name of the parse a dbt command with these inputs would produce; None when caching is off
    or the inputs cannot be read (dbt then parses, and reports what it cannot read)."""
    if cache_dir() is None:
        return None
    try:
        return _key(project_dir, profiles_dir, target, args)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def _key(project_dir: Path, profiles_dir: Path, target: str, args: list[str]) -> str:
    digest = hashlib.sha256()
    texts = []
    for path in _project_files(project_dir):
        content = path.read_bytes()
        digest.update(str(path.relative_to(project_dir)).encode() + b"\0" + hashlib.sha256(content).digest())
        texts.append(content.decode("utf-8", errors="replace"))
    profile_text = (profiles_dir / "profiles.yml").read_text()
    texts.append(profile_text)
    profile: Any = yaml.safe_load(profile_text)
    for outputs in (p.get("outputs", {}) for p in profile.values() if isinstance(p, dict)):
        for output in outputs.values():
            if isinstance(output, dict) and output.get("type") == "duckdb" and output.get("path"):
                # dbt names the database after the file; the folder is the lake's and no node holds it
                output["path"] = Path(str(output["path"])).name
    env_names = sorted({name for text in texts for name in _ENV_VAR.findall(text)})
    cli_vars = args[args.index("--vars") + 1] if "--vars" in args[:-1] else None
    inputs = {
        "versions": {name: _version(name) for name in _DISTRIBUTIONS},
        "project": [str(project_dir.resolve()), digest.hexdigest()],
        "profile": profile,
        "target": target,
        "vars": json.loads(cli_vars) if cli_vars else None,
        "env": {name: os.environ.get(name) for name in env_names},
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()[:32]


def load(key: str | None) -> Any | None:
    """The cached manifest for `key`, or None."""
    folder = cache_dir()
    if folder is None or key is None:
        return None
    path = folder / f"{key}.msgpack"
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        from dbt.contracts.graph.manifest import Manifest
        from dbt.parser.manifest import extended_mashumuro_decoder

        manifest = Manifest.from_msgpack(data, decoder=extended_mashumuro_decoder)
        manifest.metadata.generated_at = datetime.now(UTC).replace(tzinfo=None)  # as dbt's partial parse
    except Exception as exc:  # a damaged or foreign file: parse again and replace it
        log.warning("dbt parse cache: %s is unreadable (%s); parsing again", path.name, exc)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: kept when the cache is pruned
    return manifest


def store(key: str | None, target_path: Path, since: float) -> None:
    """Keep the parse dbt saved in `target_path`, if it saved one after `since` (a time.time())."""
    folder = cache_dir()
    source = target_path / PARTIAL_PARSE_FILE
    if folder is None or key is None:
        return
    try:
        if source.stat().st_mtime < since:
            return  # dbt did not parse in this command (or failed to)
        entry = str(folder / f"{key}.msgpack")
        Storage.for_location(entry).write_bytes(entry, source.read_bytes())  # readers see the whole file or none
        cached = sorted(folder.glob("*.msgpack"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in cached[KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError as exc:
        log.info("dbt parse cache: not kept (%s)", exc)
