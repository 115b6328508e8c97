"""Versioned tables with an atomic commit (docs/adr/0002-versioned-tables.md).

A table is a folder `<lake>/<zone>/<table>/` holding immutable versions under `versions/<id>/`
(Parquet files). Writers (Spark, DuckDB, pyarrow) fill a new version folder, then `commit` moves the
table's pointer to it atomically. A crash before the commit leaves an orphan folder that readers
never see and `vacuum` removes.

The lake lives in a local folder or under an `s3://bucket/prefix` (rfmlake.lake.storage). The
pointer is a `_current` file beside the versions, or, with a Glue catalog attached (the AWS
runtime), the Glue table's location (rfmlake.lake.glue), which Athena reads atomically per query.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from rfmlake.lake.storage import Storage, StorageError, is_s3

if TYPE_CHECKING:
    import boto3

    from rfmlake.lake.glue import GlueCatalog
    from rfmlake.settings import Settings

ZONES: tuple[str, ...] = ("bronze", "silver", "gold")
_POINTER = "_current"
_SYSTEM = "_system"


@dataclass(frozen=True)
class TableRef:
    zone: str
    name: str
    uri: str  # the committed version folder: a local path or an s3:// URI

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.name}"

    @property
    def version(self) -> str:
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def path(self) -> Path:
        """The version folder of a table in a local lake."""
        if is_s3(self.uri):
            raise StorageError(f"{self.qualified_name} is on S3 ({self.uri}); this step needs a local lake")
        return Path(self.uri)

    @property
    def glob(self) -> str:
        return str(self.path / "*.parquet")


def _new_version_id() -> str:
    # Sortable by time; the random suffix keeps two writers in one microsecond apart.
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def _version_time(version_id: str) -> float | None:
    try:
        return datetime.strptime(version_id.split("-", 1)[0], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


class Lake:
    """A lake rooted at a local folder or an S3 prefix. Cheap to construct; touches storage only
    when asked. With `catalog`, table pointers are Glue table locations instead of `_current` files."""

    def __init__(self, root: str | Path, *, catalog: GlueCatalog | None = None,
                 boto3_session: boto3.Session | None = None, label: str | None = None) -> None:
        self.location = Storage.normalize(root)
        self.storage = Storage.for_location(self.location, boto3_session)
        self.catalog = catalog
        self.label = label or self.location  # how messages name it (a workspace names its S3 lake)

    def __repr__(self) -> str:
        return f"Lake({self.location!r})"

    def __str__(self) -> str:
        return self.label

    @property
    def is_local(self) -> bool:
        return not self.storage.s3

    @property
    def root(self) -> Path:
        """The lake folder of a local lake (steps that keep local state use it)."""
        if not self.is_local:
            raise StorageError(f"the lake at {self.location} is on S3; this step needs a local lake")
        return Path(self.location)

    # -- layout ---------------------------------------------------------------------------------
    def table_uri(self, zone: str, name: str) -> str:
        if zone not in ZONES:
            raise ValueError(f"unknown zone {zone!r}; zones are {ZONES}")
        return Storage.join(self.location, zone, name)

    def table_dir(self, zone: str, name: str) -> Path:
        self.table_uri(zone, name)  # validates the zone
        return self.root / zone / name

    def system_uri(self, *parts: str) -> str:
        """Lake-internal state: run reports, models, keys, the dbt working database."""
        return Storage.join(self.location, _SYSTEM, *parts)

    @property
    def system_dir(self) -> Path:
        return self.root / _SYSTEM

    @property
    def runs_dir(self) -> Path:
        return self.system_dir / "runs"

    @property
    def models_dir(self) -> Path:
        return self.system_dir / "models"

    def read_system(self, *parts: str) -> bytes | None:
        return self.storage.read_bytes(self.system_uri(*parts))

    def write_system(self, data: bytes, *parts: str) -> None:
        self.storage.write_bytes(self.system_uri(*parts), data)

    # -- versions -------------------------------------------------------------------------------
    def new_version(self, zone: str, name: str) -> str:
        """A fresh, not yet existing version folder for a writer to fill (Spark creates it itself)."""
        return Storage.join(self.table_uri(zone, name), "versions", _new_version_id())

    def files(self, version: str | TableRef) -> list[str]:
        """The data files of a version (marker files such as `_SUCCESS` excluded)."""
        uri = version.uri if isinstance(version, TableRef) else str(version)
        return self.storage.files(uri)

    def commit(self, zone: str, name: str, version_dir: str | Path) -> TableRef:
        """Make `version_dir` the table's current version, atomically."""
        version_uri = str(version_dir).rstrip("/")
        data_files = self.files(version_uri)
        if not data_files:
            raise ValueError(f"refusing to commit {zone}.{name}: {version_uri} holds no Parquet files")
        ref = TableRef(zone, name, version_uri)
        if self.catalog is not None:
            # What Athena and every reader of this lake see: one UpdateTable call.
            with self.storage.open_input(data_files[0]) as handle:
                schema = pq.read_schema(handle)
            self.catalog.set_location(zone, name, version_uri, schema, ref.version)
        # The pointer object: the commit itself without a catalog; with one, written after the Glue
        # swap so its Object Created event (which starts the indexer and activation Lambdas) comes
        # once the new version is visible. Atomic either way: one file rename or one PUT.
        pointer = {"version": ref.version, "committed_at": time.time()}
        self.storage.write_bytes(Storage.join(self.table_uri(zone, name), _POINTER), json.dumps(pointer).encode())
        return ref

    def current(self, zone: str, name: str) -> TableRef | None:
        table = self.table_uri(zone, name)
        if self.catalog is not None:
            location = self.catalog.location(zone, name)
            return TableRef(zone, name, location) if location else None
        raw = self.storage.read_bytes(Storage.join(table, _POINTER))
        if raw is None:
            return None
        version = json.loads(raw)["version"]
        return TableRef(zone, name, Storage.join(table, "versions", version))

    def require(self, zone: str, name: str) -> TableRef:
        ref = self.current(zone, name)
        if ref is None:
            raise FileNotFoundError(f"table {zone}.{name} does not exist in the lake at {self}")
        return ref

    def tables(self, zone: str | None = None) -> list[TableRef]:
        refs: list[TableRef] = []
        for z in (zone,) if zone else ZONES:
            if self.catalog is not None:
                names = self.catalog.table_names(z)
            else:
                names = [n for n, is_dir in self.storage.children(Storage.join(self.location, z)) if is_dir]
            for name in names:
                ref = self.current(z, name)
                if ref is not None:
                    refs.append(ref)
        return refs

    # -- readers and writers --------------------------------------------------------------------
    def read_arrow(self, ref: TableRef, columns: list[str] | None = None) -> pa.Table:
        """Read a committed version (all its data files) into memory."""
        tables = []
        for uri in self.files(ref):
            with self.storage.open_input(uri) as handle:
                tables.append(pq.read_table(handle, columns=columns))
        if not tables:
            raise ValueError(f"{ref.qualified_name} version {ref.version} holds no Parquet files")
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]

    def count_rows(self, version: str | TableRef) -> int:
        """Row count from the Parquet footers: exact, and no data read."""
        total = 0
        for uri in self.files(version):
            with self.storage.open_input(uri) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        return total

    def write_version(self, version_dir: str, table: pa.Table) -> None:
        """Write an Arrow table as the one file of an uncommitted version folder."""
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self.storage.write_bytes(Storage.join(version_dir, "part-00000.parquet"), buffer.getvalue())

    def write_arrow(self, zone: str, name: str, table: pa.Table) -> TableRef:
        """Write an Arrow table as a new version and commit it."""
        version_dir = self.new_version(zone, name)
        self.write_version(version_dir, table)
        return self.commit(zone, name, version_dir)

    def vacuum(self, keep: int = 2, min_age_seconds: float = 3600.0) -> list[str]:
        """Delete versions that are neither current nor among the newest `keep`, and orphans of
        crashed writers older than `min_age_seconds` (a writer still running is younger)."""
        removed: list[str] = []
        now = time.time()
        for zone in ZONES:
            for table_name, is_dir in self.storage.children(Storage.join(self.location, zone)):
                if not is_dir:
                    continue
                versions_dir = Storage.join(self.table_uri(zone, table_name), "versions")
                ref = self.current(zone, table_name)
                current = ref.version if ref and ref.uri.startswith(versions_dir) else None
                versions = [n for n, d in self.storage.children(versions_dir) if d]
                if current is None:
                    stale = versions
                else:
                    older = [v for v in versions if v < current]
                    newer = [v for v in versions if v > current]  # uncommitted: a crash or a live writer
                    stale = older[: max(0, len(older) - (keep - 1))] + newer
                for version in stale:
                    uri = Storage.join(versions_dir, version)
                    # Local folders carry their own mtime; S3 prefixes do not, so the id's time is used.
                    written = self.storage.mtime(uri) if self.is_local else _version_time(version)
                    old = written is not None and now - written >= min_age_seconds
                    if old or (current is not None and version < current):
                        self.storage.delete_dir(uri)
                        removed.append(uri)
        return removed


def open_lake(location: str | Path, settings: Settings | None = None,
              boto3_session: boto3.Session | None = None) -> Lake:
    """The lake at `location` with the pointer store the settings choose (`lake_catalog`): Glue
    table locations for an s3:// lake by default, `_current` files otherwise."""
    from rfmlake.lake.glue import GlueCatalog
    from rfmlake.settings import Settings

    settings = settings or Settings()
    use_glue = settings.lake_catalog == "glue" or (settings.lake_catalog == "auto" and is_s3(location))
    catalog = GlueCatalog(settings.prefix, boto3_session=boto3_session) if use_glue else None
    return Lake(location, catalog=catalog, boto3_session=boto3_session)
