"""Scan a landing folder against the landing contract (DESIGN.md section 3) before any Spark work.

Everything a user can get wrong about the folder itself (missing, empty, a stray folder, a wrong
extension, an unreadable or fake Parquet file) is reported here with a specific message, so the
Spark jobs only ever see files they can read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rfmlake.contract.entities import ENTITIES, LANDING_FORMATS
from rfmlake.errors import LandingError

_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class LandingFile:
    """One landed file that conforms to the contract's layout."""

    entity: str
    path: Path  # absolute
    relative_path: str  # POSIX path relative to the landing folder, e.g. "orders/2024-01.csv"
    format: str  # csv | json | parquet | text (the Spark reader)
    size: int  # bytes

    @property
    def is_empty(self) -> bool:
        return self.size == 0


def _ignored(name: str) -> bool:
    # Generator manifests, editor swap files, .DS_Store and the like are not data.
    return name.startswith(("_", "."))


def _allowed_extensions(entity_name: str) -> list[str]:
    formats = ENTITIES[entity_name].formats
    return sorted(ext for ext, fmt in LANDING_FORMATS.items() if fmt in formats)


def _check_readable(path: Path, fmt: str, relative: str) -> int:
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(4)
            if fmt == "parquet" and size > 0:
                handle.seek(-4, os.SEEK_END)
                tail = handle.read(4)
    except PermissionError:
        raise LandingError(f"landing file {relative} is not readable (permission denied)") from None
    except OSError as exc:
        raise LandingError(f"landing file {relative} cannot be read: {exc.strerror or exc}") from None
    if fmt == "parquet" and size > 0 and (head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC):
        raise LandingError(
            f"landing file {relative} is not a Parquet file (no PAR1 magic bytes at its start and end); "
            "re-export it as Parquet or land it as .csv / .jsonl"
        )
    return size


def _files_under(entity_dir: Path) -> list[Path]:
    files: list[Path] = []
    for root, dirs, names in os.walk(entity_dir):
        # Hidden and '_'-prefixed folders (Spark's _temporary, .ipynb_checkpoints) are not data.
        dirs[:] = sorted(d for d in dirs if not _ignored(d))
        files.extend(Path(root) / n for n in sorted(names) if not _ignored(n))
    return files


def scan_landing(landing_dir: Path) -> list[LandingFile]:
    """List the landed files by entity, sorted by relative path. Raises LandingError on any violation."""
    landing_dir = Path(landing_dir)
    known = ", ".join(sorted(ENTITIES))
    if not landing_dir.exists():
        raise LandingError(f"landing folder {landing_dir} does not exist")
    if not landing_dir.is_dir():
        raise LandingError(f"landing folder {landing_dir} is not a folder")
    try:
        top = sorted(p for p in landing_dir.iterdir() if not _ignored(p.name))
    except PermissionError:
        raise LandingError(f"landing folder {landing_dir} is not readable (permission denied)") from None

    found: list[LandingFile] = []
    for item in top:
        if item.name not in ENTITIES:
            kind = "folder" if item.is_dir() else "file"
            raise LandingError(
                f"unknown entity {kind} {item.name!r} in landing folder {landing_dir}; "
                f"files go in <landing>/<entity>/ and the known entities are: {known}"
            )
        if not item.is_dir():
            raise LandingError(f"{item.name!r} in landing folder {landing_dir} must be a folder of files, not a file")
        allowed = _allowed_extensions(item.name)
        for path in _files_under(item):
            relative = path.relative_to(landing_dir).as_posix()
            extension = path.suffix.lower()
            fmt = LANDING_FORMATS.get(extension)
            if fmt is None or fmt not in ENTITIES[item.name].formats:
                raise LandingError(
                    f"landing file {relative} has extension {extension or '(none)'!r}, which entity "
                    f"{item.name} does not accept; allowed: {', '.join(allowed)}"
                )
            size = _check_readable(path, fmt, relative)
            found.append(LandingFile(item.name, path.resolve(), relative, fmt, size))

    if not found:
        raise LandingError(
            f"empty input: landing folder {landing_dir} holds no entity files; "
            f"put files under <landing>/<entity>/ for one of: {known}"
        )
    return sorted(found, key=lambda f: f.relative_path)
