"""Where the lake's bytes live: a local folder or an S3 prefix, behind pyarrow's filesystem
interface, so `Lake`, `scan_landing` and the stage workspace never branch on the scheme.

A location is a plain path (`/data/lake`, `lake`) or an `s3://bucket/prefix` URI. Spark, DuckDB
and pyarrow all accept both forms, so the URI strings this module hands out go to them unchanged
(Glue reads `s3://` natively; locally only paths occur).

S3 credentials come from the standard chain (environment, profile, instance or task role) or from
an explicit `boto3_session`; `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` point at an emulator such
as a moto server, exactly as they do for boto3.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

from rfmlake.errors import RfmlakeError

if TYPE_CHECKING:
    import boto3

S3_SCHEME = "s3://"


class StorageError(RfmlakeError):
    """A lake or landing location cannot be read or written."""


def is_s3(location: str | Path) -> bool:
    return str(location).startswith(S3_SCHEME)


def _region(session: boto3.Session | None) -> str:
    region = session.region_name if session is not None else None
    return region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_filesystem(boto3_session: boto3.Session | None = None) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem honouring boto3's endpoint variables and, if given, the session's
    credentials and region."""
    kwargs: dict[str, Any] = {"region": _region(boto3_session)}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urlparse(endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    if boto3_session is not None:
        credentials = boto3_session.get_credentials()
        if credentials is not None:
            frozen = credentials.get_frozen_credentials()
            kwargs.update(access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)
    return pafs.S3FileSystem(**kwargs)


@dataclass(frozen=True)
class Storage:
    """One filesystem plus the way its paths print as locations (`s3://...` or a local path)."""

    fs: pafs.FileSystem
    s3: bool

    @classmethod
    def for_location(cls, location: str | Path, boto3_session: boto3.Session | None = None) -> Storage:
        if is_s3(location):
            return cls(s3_filesystem(boto3_session), True)
        return cls(pafs.LocalFileSystem(), False)

    # -- names ----------------------------------------------------------------------------------
    @staticmethod
    def normalize(location: str | Path) -> str:
        """The canonical form of a location: `s3://bucket/prefix` without a trailing slash, or an
        absolute local path."""
        if is_s3(location):
            text = str(location).rstrip("/")
            if len(text) <= len(S3_SCHEME) or text[len(S3_SCHEME):].startswith("/"):
                raise StorageError(f"{location!r} is not an s3://bucket/prefix location")
            return text
        return str(Path(location).resolve())

    @staticmethod
    def join(location: str, *parts: str) -> str:
        return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])

    def _path(self, location: str) -> str:
        """The filesystem's own path for a location (pyarrow S3 paths carry no scheme)."""
        return location[len(S3_SCHEME):] if self.s3 else location

    def _location(self, path: str) -> str:
        return S3_SCHEME + path if self.s3 else path

    # -- reads ----------------------------------------------------------------------------------
    def _info(self, location: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(self._path(location))
        except OSError as exc:
            raise StorageError(f"cannot read {location}: {exc}") from None

    def is_file(self, location: str) -> bool:
        return self._info(location).type == pafs.FileType.File

    def is_dir(self, location: str) -> bool:
        return self._info(location).type == pafs.FileType.Directory

    def exists(self, location: str) -> bool:
        return self._info(location).type != pafs.FileType.NotFound

    def children(self, location: str) -> list[tuple[str, bool]]:
        """(name, is_dir) of the entries directly under a folder, sorted; [] if it does not exist."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self._path(location), allow_not_found=True))
        except OSError as exc:
            raise StorageError(f"cannot list {location}: {exc}") from None
        return sorted((info.base_name, info.type == pafs.FileType.Directory) for info in infos)

    def files(self, location: str, recursive: bool = False) -> list[str]:
        """Locations of the data files under a folder: hidden and marker files (`_SUCCESS`, `.crc`,
        names starting with `_` or `.`) are skipped, as Spark, Hive and Athena skip them."""
        return [uri for uri, _, _ in self.file_infos(location, recursive)]

    def file_infos(self, location: str, recursive: bool = False) -> list[tuple[str, int, str]]:
        """(location, size, modification stamp) of the data files under a folder, as `files` lists
        them; the stamp (nanoseconds since the epoch, as text) tells a re-delivered file apart."""
        try:
            infos = self.fs.get_file_info(
                pafs.FileSelector(self._path(location), allow_not_found=True, recursive=recursive)
            )
        except OSError as exc:
            raise StorageError(f"cannot list {location}: {exc}") from None
        root = self._path(location).rstrip("/")
        found = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(root) + 1:]
            if any(part.startswith(("_", ".")) for part in relative.split("/")):
                continue
            stamp = str(info.mtime_ns) if info.mtime_ns is not None else ""
            found.append((self._location(info.path), int(info.size or 0), stamp))
        return sorted(found)

    def walk(self, location: str) -> list[str]:
        """Every file under a folder, recursively, hidden ones included (lake-internal state)."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self._path(location), allow_not_found=True,
                                                            recursive=True))
        except OSError as exc:
            raise StorageError(f"cannot list {location}: {exc}") from None
        return sorted(self._location(i.path) for i in infos if i.type == pafs.FileType.File)

    def mtime(self, location: str) -> float | None:
        info = self._info(location)
        return info.mtime.timestamp() if info.mtime is not None else None

    def open_input(self, location: str) -> pa.NativeFile:
        """A seekable reader (what pyarrow.parquet needs for footers and column reads)."""
        try:
            return self.fs.open_input_file(self._path(location))
        except OSError as exc:
            raise StorageError(f"cannot read {location}: {exc}") from None

    def read_bytes(self, location: str) -> bytes | None:
        """The file's bytes, or None if it does not exist."""
        try:
            with self.fs.open_input_stream(self._path(location)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if not self.exists(location):
                return None
            raise StorageError(f"cannot read {location}: {exc}") from None

    # -- writes ---------------------------------------------------------------------------------
    def write_bytes(self, location: str, data: bytes) -> None:
        """Replace the file atomically: readers see the old or the new bytes, never a mix. On S3 a
        PUT is atomic; locally the bytes go to a temporary file renamed over the target."""
        if self.s3:
            with self.fs.open_output_stream(self._path(location)) as stream:
                stream.write(data)
            return
        target = Path(location)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        tmp.write_bytes(data)
        os.replace(tmp, target)

    def make_dir(self, location: str) -> None:
        if not self.s3:  # S3 has no folders: a prefix exists once a key is written under it
            Path(location).mkdir(parents=True, exist_ok=True)

    def delete_dir(self, location: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_dir(self._path(location))

    def delete_file(self, location: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(self._path(location))

    def copy_file(self, source: str, target: str, target_storage: Storage) -> None:
        """Stream one file to another (or the same) storage."""
        target_storage.make_dir(target.rsplit("/", 1)[0])
        pafs.copy_files(self._path(source), target_storage._path(target),
                        source_filesystem=self.fs, destination_filesystem=target_storage.fs)
