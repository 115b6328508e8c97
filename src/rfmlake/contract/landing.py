"""Scan a landing folder against the landing contract (DESIGN.md section 3) before any Spark work.

Everything a user can get wrong about the folder itself (missing, empty, a stray folder, a wrong
extension, an unreadable or fake Parquet file) is reported here with a specific message, so the
Spark jobs only ever see files they can read.

The landing is a local folder or an `s3://bucket/prefix` (the AWS runtime); both are listed and
read through rfmlake.lake.storage, and each file's `uri` is what Spark reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from rfmlake.contract.entities import ENTITIES, LANDING_FORMATS
from rfmlake.errors import LandingError
from rfmlake.lake.storage import S3_SCHEME, Storage, StorageError, is_s3

if TYPE_CHECKING:
    import boto3

_PARQUET_MAGIC = b"PAR1"
_DENIED = ("permission denied", "access denied", "accessdenied", "access_denied", "errno 13")


@dataclass(frozen=True)
class LandingFile:
    """One landed file that conforms to the contract's layout."""

    entity: str
    uri: str  # what Spark reads: an absolute local path or an s3:// URI
    relative_path: str  # POSIX path relative to the landing folder, e.g. "orders/2024-01.csv"
    format: str  # csv | json | parquet | text (the reader)
    size: int  # bytes
    modified: str = ""  # modification stamp from the listing (with size: has the file changed?)
    encoding: str = "utf-8"  # text encoding (settings ingest.encodings)

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def path(self) -> Path:
        """The file in a local landing folder."""
        if is_s3(self.uri):
            raise LandingError(f"landing file {self.relative_path} is on S3 ({self.uri}); this step needs a local file")
        return Path(self.uri)


def _ignored(name: str) -> bool:
    # Generator manifests, editor swap files, .DS_Store and the like are not data.
    return name.startswith(("_", "."))


def _denied(exc: Exception) -> bool:
    """A refusal (local permissions, S3 AccessDenied) rather than a missing or broken file."""
    return isinstance(exc, PermissionError) or any(word in str(exc).lower() for word in _DENIED)


def _allowed_extensions(entity_name: str) -> list[str]:
    formats = ENTITIES[entity_name].formats
    return sorted(ext for ext, fmt in LANDING_FORMATS.items() if fmt in formats)


def _check_readable(storage: Storage, uri: str, fmt: str, relative: str) -> int:
    """The file's size, after reading its first bytes (and, for Parquet, its last) through storage."""
    tail = b""
    try:
        with storage.open_input(uri) as handle:
            size = handle.size()
            head = handle.read(4)
            if fmt == "parquet" and size >= 2 * len(_PARQUET_MAGIC):
                handle.seek(size - len(_PARQUET_MAGIC))
                tail = handle.read(len(_PARQUET_MAGIC))
    except (OSError, StorageError) as exc:
        if _denied(exc):
            raise LandingError(f"landing file {relative} is not readable (permission denied)") from None
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise LandingError(f"landing file {relative} cannot be read: {detail}") from None
    if fmt == "parquet" and size > 0 and (head != _PARQUET_MAGIC or tail != _PARQUET_MAGIC):
        raise LandingError(
            f"landing file {relative} is not a Parquet file (no PAR1 magic bytes at its start and end); "
            "re-export it as Parquet or land it as .csv / .jsonl"
        )
    return size


@contextmanager
def _listing(shown: str) -> Iterator[None]:
    """Storage failures while listing the landing, as landing errors."""
    try:
        yield
    except StorageError as exc:
        if _denied(exc):
            raise LandingError(f"landing folder {shown} is not readable (permission denied)") from None
        raise LandingError(f"landing folder {shown} cannot be listed: {exc}") from None


def _require_folder(storage: Storage, location: str, shown: str) -> None:
    """A landing that is no folder (on S3: no prefix with objects) fails saying what is missing."""
    with _listing(shown):
        if storage.is_dir(location):
            return
        if storage.is_file(location):
            kind = "an object, not a prefix of objects" if storage.s3 else "not a folder"
            raise LandingError(f"landing folder {shown} is {kind}")
        if not storage.s3:
            raise LandingError(f"landing folder {shown} does not exist")
        bucket = location[len(S3_SCHEME):].split("/", 1)[0]
        if not storage.exists(S3_SCHEME + bucket):
            raise LandingError(
                f"landing folder {shown} does not exist: there is no bucket {bucket!r} (or these credentials "
                "cannot see it)"
            )
        raise LandingError(f"landing folder {shown} does not exist: there are no objects under that prefix")


def scan_landing(landing: str | Path, boto3_session: boto3.Session | None = None, *,
                 ingested: dict[str, tuple[int, str]] | None = None) -> list[LandingFile]:
    """List the landed files by entity, sorted by relative path. Raises LandingError on any violation.

    `landing` is a local folder or an `s3://bucket/prefix`; `boto3_session` gives S3 credentials
    (default: the standard chain). Files in `ingested` (relative path -> (size, modified), the lake's
    ingest manifest) with the same size and stamp were checked when they were ingested and are not
    opened again, so an incremental run reads only what is new."""
    try:
        location = Storage.normalize(landing)
    except StorageError as exc:
        raise LandingError(f"landing folder: {exc}") from None
    shown = location if is_s3(landing) else str(Path(landing))
    storage = Storage.for_location(location, boto3_session)
    known = ", ".join(sorted(ENTITIES))
    _require_folder(storage, location, shown)

    found: list[LandingFile] = []
    with _listing(shown):
        top = [(name, is_dir) for name, is_dir in storage.children(location) if not _ignored(name)]
    for name, is_dir in top:
        if name not in ENTITIES:
            kind = "folder" if is_dir else "file"
            raise LandingError(
                f"unknown entity {kind} {name!r} in landing folder {shown}; "
                f"files go in <landing>/<entity>/ and the known entities are: {known}"
            )
        if not is_dir:
            raise LandingError(f"{name!r} in landing folder {shown} must be a folder of files, not a file")
        allowed = _allowed_extensions(name)
        with _listing(shown):
            # Hidden and '_'-prefixed folders and files (Spark's _temporary, .ipynb_checkpoints) are skipped.
            infos = storage.file_infos(Storage.join(location, name), recursive=True)
        for uri, listed_size, modified in infos:
            relative = uri[len(location):].lstrip("/")
            extension = PurePosixPath(relative).suffix.lower()
            fmt = LANDING_FORMATS.get(extension)
            if fmt is None or fmt not in ENTITIES[name].formats:
                raise LandingError(
                    f"landing file {relative} has extension {extension or '(none)'!r}, which entity "
                    f"{name} does not accept; allowed: {', '.join(allowed)}"
                )
            if ingested is not None and ingested.get(relative) == (listed_size, modified):
                size = listed_size
            else:
                size = _check_readable(storage, uri, fmt, relative)
            found.append(LandingFile(name, uri, relative, fmt, size, modified))

    if not found:
        raise LandingError(
            f"empty input: landing folder {shown} holds no entity files; "
            f"put files under <landing>/<entity>/ for one of: {known}"
        )
    return sorted(found, key=lambda f: f.relative_path)
