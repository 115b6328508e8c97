"""Versioned tables with an atomic commit (docs/adr/0002-versioned-tables.md).

A table is a folder `<lake>/<zone>/<table>/` holding immutable versions under `versions/<id>/`
(Parquet files). Writers (Spark, DuckDB, pyarrow) fill a new version folder, then `commit` moves the
table's pointer to it atomically. A crash before the commit leaves an orphan folder that readers
never see and `vacuum` removes.

A partitioned table (docs/adr/0010) writes partitions into immutable version folders,
`<table>/versions/<id>/<k1>=<v1>/<k2>=<v2>/` (the layout Spark's and DuckDB's partitioned writes
produce), and its pointer lists, for every partition, the version that holds it.
`commit_partitions` adds, replaces and drops partitions in one pointer write, so an incremental run
rewrites only the partitions it touched (one landing file's rows, one as_of date of history) and the
table still changes atomically.

The lake lives in a local folder or under an `s3://bucket/prefix` (rfmlake.lake.storage). The
pointer is a `_current` file beside the versions, or, with a Glue catalog attached (the AWS
runtime), the Glue table's location (rfmlake.lake.glue), which Athena reads atomically per query.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
# Partition column types a partitioned table may declare (Arrow type -> DuckDB's name for it).
_DUCKDB_TYPES: dict[str, str] = {"string": "VARCHAR", "date32[day]": "DATE", "int32": "INTEGER", "int64": "BIGINT"}
_POINTER = "_current"
_TRANSACTIONS = "transactions"  # under _system/: journals of multi-table commits being applied
_SYSTEM = "_system"


@dataclass(frozen=True)
class Partition:
    """One partition of a partitioned table: its values and its committed version folder."""

    values: tuple[tuple[str, str], ...]  # ((column, value), ...) in the table's partition order
    uri: str  # <table>/versions/<version>/<key>
    version: str

    @property
    def key(self) -> str:
        return partition_key(self.values)


def partition_key(values: tuple[tuple[str, str], ...] | dict[str, str]) -> str:
    """The hive-style relative folder of a partition: `k1=v1/k2=v2`."""
    pairs = values.items() if isinstance(values, dict) else values
    key = "/".join(f"{column}={value}" for column, value in pairs)
    if not key or any(not v or "/" in v or v in (".", "..") for _, v in pairs):
        raise ValueError(f"invalid partition values {dict(pairs)!r}: each value must be non-empty without '/'")
    return key


def _partition_values(key: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(part.split("=", 1)) for part in key.split("/"))  # type: ignore[misc]


@dataclass(frozen=True)
class TableRef:
    zone: str
    name: str
    uri: str  # the committed version folder (a partitioned table: the table folder); local path or s3://
    partitions: tuple[Partition, ...] = ()  # a partitioned table's partitions, sorted by key
    partition_by: tuple[str, ...] = ()
    commit_id: str | None = None  # a partitioned table's commit (its pointer's version)
    schema_uri: str | None = None  # a partitioned table's zero-row Parquet file holding its columns
    partition_types: tuple[tuple[str, str], ...] = ()  # DuckDB type of each partition column

    @property
    def qualified_name(self) -> str:
        return f"{self.zone}.{self.name}"

    @property
    def is_partitioned(self) -> bool:
        return bool(self.partition_by)

    @property
    def version(self) -> str:
        if self.is_partitioned:
            return str(self.commit_id)
        return self.uri.rstrip("/").rsplit("/", 1)[-1]

    @property
    def path(self) -> Path:
        """The version folder of a table in a local lake (the table folder when partitioned)."""
        if is_s3(self.uri):
            raise StorageError(f"{self.qualified_name} is on S3 ({self.uri}); this step needs a local lake")
        return Path(self.uri)

    @property
    def globs(self) -> list[str]:
        """One Parquet glob per version folder: what DuckDB's read_parquet takes as a list."""
        if self.is_partitioned:
            return [Storage.join(p.uri, "*.parquet") for p in self.partitions]
        return [Storage.join(self.uri, "*.parquet")]

    @property
    def glob(self) -> str:
        if self.is_partitioned:
            raise StorageError(f"{self.qualified_name} is partitioned: read it with `globs` or parquet_scan()")
        return str(self.path / "*.parquet")


def _sql_list(items: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def parquet_scan(ref: TableRef) -> str:
    """A DuckDB table expression over a committed table, partitioned or not. A partitioned table's
    partition columns come from its folder names (hive style, as text), as Athena gets them from
    the Glue partitions; partitions may differ in their columns (bronze keeps each file's extra
    columns), which are matched by name. Its zero-row schema file comes first, so the columns and
    their order are the table's even while it has no partitions."""
    if not ref.is_partitioned:
        return f"read_parquet({_sql_list(ref.globs)}, union_by_name = true)"
    schema = f"SELECT * FROM read_parquet('{str(ref.schema_uri).replace(chr(39), chr(39) * 2)}')"
    if not ref.partitions:
        return f"({schema})"
    types = ", ".join(f"'{c}': {t}" for c, t in ref.partition_types)
    data = (f"SELECT * FROM read_parquet({_sql_list(ref.globs)}, union_by_name = true, hive_partitioning = true, "
            f"hive_types = {{{types}}}, hive_types_autocast = false)")
    return f"({schema} UNION ALL BY NAME {data})"


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
        self.boto3_session = boto3_session  # for the AWS calls beyond storage (locks, erasure)
        self.catalog = catalog
        self.label = label or self.location  # how messages name it (a workspace names its S3 lake)
        self._pending: dict[tuple[str, str], dict] | None = None  # pointers of an open transaction()

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
        """The data files of a version, or of every partition of a partitioned table (marker files
        such as `_SUCCESS` excluded)."""
        if isinstance(version, TableRef) and version.is_partitioned:
            return [f for p in version.partitions for f in self.storage.files(p.uri)]
        uri = version.uri if isinstance(version, TableRef) else str(version)
        return self.storage.files(uri)

    def commit(self, zone: str, name: str, version_dir: str | Path) -> TableRef:
        """Make `version_dir` the table's current version, atomically."""
        version_uri = str(version_dir).rstrip("/")
        data_files = self.files(version_uri)
        if not data_files:
            raise ValueError(f"refusing to commit {zone}.{name}: {version_uri} holds no Parquet files")
        ref = TableRef(zone, name, version_uri)
        pointer = {"version": ref.version, "committed_at": time.time()}
        self._publish(zone, name, pointer)
        return ref

    def _sync_catalog(self, zone: str, name: str, pointer: dict) -> None:
        """Make the Glue catalog show what a pointer says (AWS: what Athena reads)."""
        if self.catalog is None:
            return
        table = self.table_uri(zone, name)
        if "partitions" in pointer:
            ref = self._partitioned_ref(zone, name, pointer)
            schema = self._table_schema(pointer, table)
            if schema is not None:
                self.catalog.set_partitions(zone, name, table, ref.partition_by, schema,
                                            {p.values: p.uri for p in ref.partitions}, pointer["version"])
            return
        version_uri = Storage.join(table, "versions", pointer["version"])
        with self.storage.open_input(self.files(version_uri)[0]) as handle:
            schema = pq.read_schema(handle)
        self.catalog.set_location(zone, name, version_uri, schema, pointer["version"])

    def _publish(self, zone: str, name: str, pointer: dict) -> None:
        """Make a table's new pointer visible now, or, inside `transaction()`, when it ends."""
        if self._pending is not None:
            self._pending[(zone, name)] = pointer
            return
        self._write_pointer(zone, name, pointer)

    def _write_pointer(self, zone: str, name: str, pointer: dict | None) -> None:
        table = self.table_uri(zone, name)
        if pointer is None:  # a rolled back creation: the table did not exist
            self.storage.delete_file(Storage.join(table, _POINTER))
            return
        # An unpartitioned table's Glue location moves first, so the pointer object's Created event
        # (which starts the indexer and activation Lambdas) comes once the version is visible; a
        # partitioned table's pointer is the commit and Glue's partitions follow it (ADR 0010).
        if "partitions" not in pointer:
            self._sync_catalog(zone, name, pointer)
        self.storage.write_bytes(Storage.join(table, _POINTER), json.dumps(pointer).encode())
        if "partitions" in pointer:
            self._sync_catalog(zone, name, pointer)

    def restore_pointer(self, zone: str, name: str, pointer: dict) -> None:
        """Make a pointer recorded earlier current again, written as a commit writes it (the Glue
        location, or a partitioned table's Glue partitions, follow): a failed run's rollback
        (rfmlake.lake.rollback). Raises StorageError when a version it names is gone."""
        table = self.table_uri(zone, name)
        if "partitions" in pointer:
            folders = [Storage.join(table, "versions", v, k) for k, v in pointer["partitions"].items()]
        else:
            folders = [Storage.join(table, "versions", pointer["version"])]
        gone = [uri for uri in folders if not self.storage.files(uri)]
        if gone:
            raise StorageError(f"cannot restore {zone}.{name}: {len(gone)} version folders its pointer names are "
                               f"gone (first: {gone[0]})")
        self._write_pointer(zone, name, pointer)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit every table of the block together: nothing is visible until the block ends, and a
        process killed while the pointers are written is rolled back by `recover()` (the journal
        under `_system/transactions/` keeps each table's previous pointer). An exception in the
        block commits nothing. Nested blocks join the outer one."""
        if self._pending is not None:
            yield
            return
        self._pending = {}
        try:
            yield
            pending, self._pending = self._pending, None
            if not pending:
                return
            journal = {f"{z}.{n}": {"old": self._read_pointer(z, n), "new": p} for (z, n), p in pending.items()}
            name = f"{_new_version_id()}.json"
            self.write_system(json.dumps(journal).encode(), _TRANSACTIONS, name)
            for (zone, table), pointer in pending.items():
                self._write_pointer(zone, table, pointer)
            self.storage.delete_file(self.system_uri(_TRANSACTIONS, name))
        finally:
            self._pending = None

    def recover(self) -> list[str]:
        """Roll back the commits of a transaction a killed process left half applied: each table
        gets its previous pointer again. Returns the tables restored."""
        restored: list[str] = []
        folder = self.system_uri(_TRANSACTIONS)
        for uri in self.storage.walk(folder) if self.storage.is_dir(folder) or self.storage.s3 else []:
            data = self.storage.read_bytes(uri)
            if data is None:
                continue
            for qualified, change in sorted(json.loads(data).items()):
                zone, table = qualified.split(".", 1)
                if self._read_pointer(zone, table) != change["old"]:
                    self._write_pointer(zone, table, change["old"])
                    restored.append(qualified)
            self.storage.delete_file(uri)
        return restored

    def commit_partitions(self, zone: str, name: str, partition_by: tuple[str, ...] | list[str], *,
                          add: dict[str, str] | None = None, drop: set[str] | list[str] | tuple[str, ...] = (),
                          schema: pa.Schema | None = None, replace: bool = False) -> TableRef:
        """Change a partitioned table in one atomic pointer write: `add` maps partition keys
        (`partition_key(values)`) to the new version folder (`new_version`) holding that partition
        under `<version>/<key>/` (a new partition, or a replacement), `drop` lists partition keys to
        remove. `schema` (else the first added file's) is merged
        into the table's schema, which readers get even while the table has no partitions.
        A table that does not exist yet is created (with no partitions, if nothing is added).
        `replace` starts the table afresh from `add` (a rebuild; the only way to turn a table that
        was not partitioned into a partitioned one)."""
        partition_by = tuple(partition_by)
        add = {key: str(uri).rstrip("/") for key, uri in (add or {}).items()}
        table = self.table_uri(zone, name)
        current = None if replace else self._read_pointer(zone, name)
        if current is not None and "partitions" not in current:
            raise ValueError(f"{zone}.{name} is not a partitioned table; it cannot take partitions")
        if current is not None and tuple(current["partition_by"]) != partition_by:
            raise ValueError(f"{zone}.{name} is partitioned by {current['partition_by']}, not {list(partition_by)}")
        partitions: dict[str, str] = dict(current["partitions"]) if current else {}
        for key, uri in add.items():
            if tuple(c for c, _ in _partition_values(key)) != partition_by:
                raise ValueError(f"partition {key!r} of {zone}.{name} does not follow {list(partition_by)}")
            if uri.rsplit("/", 1)[0] != Storage.join(table, "versions"):
                raise ValueError(f"{uri} is not a version folder of {zone}.{name}")
            if not self.storage.files(Storage.join(uri, key)):
                raise ValueError(f"refusing to commit {zone}.{name}: {Storage.join(uri, key)} holds no Parquet files")
        stored_schema = self._table_schema(current, table)
        new_schema = schema if schema is not None else self._first_schema(add)
        if new_schema is not None:
            # Partition columns are folder names, read back with the writer's type (text if the
            # writer did not say), after the data columns.
            data = [f for f in new_schema if f.name not in partition_by]
            given = {f.name: f.type for f in new_schema if f.name in partition_by}
            new_schema = pa.schema([*data, *(pa.field(c, given.get(c, pa.string())) for c in partition_by)])
        merged = _merge_schemas(stored_schema, new_schema)
        if merged is None:
            raise ValueError(f"{zone}.{name} needs a schema: it has none yet and nothing was added")
        schema_file = current.get("schema") if current else None
        if merged is not None and (stored_schema is None or not merged.equals(stored_schema)):
            schema_file = f"_schema/{_new_version_id()}.parquet"
            buffer = io.BytesIO()
            pq.write_table(merged.empty_table(), buffer, compression="zstd")
            self.storage.write_bytes(Storage.join(table, schema_file), buffer.getvalue())
        previous = {key: partitions[key] for key in [*add, *drop] if key in partitions}
        for key in drop:
            partitions.pop(key, None)
        partitions.update({key: uri.rsplit("/", 1)[1] for key, uri in add.items()})
        commit_id = _new_version_id()
        pointer = {"version": commit_id, "committed_at": time.time(), "partition_by": list(partition_by),
                   "partition_types": {c: _DUCKDB_TYPES.get(str(merged.field(c).type), "VARCHAR")
                                       for c in partition_by},
                   "schema": schema_file, "partitions": dict(sorted(partitions.items())),
                   # the versions this commit replaced: kept by vacuum like a non-partitioned
                   # table's previous version, for readers that started before the commit
                   "previous": previous}
        self._publish(zone, name, pointer)
        return self._partitioned_ref(zone, name, pointer)

    def _first_schema(self, add: dict[str, str]) -> pa.Schema | None:
        for key, uri in add.items():
            files = self.storage.files(Storage.join(uri, key))
            if files:
                with self.storage.open_input(files[0]) as handle:
                    return pq.read_schema(handle)
        return None

    def _table_schema(self, pointer: dict | None, table: str) -> pa.Schema | None:
        if not pointer or not pointer.get("schema"):
            return None
        with self.storage.open_input(Storage.join(table, pointer["schema"])) as handle:
            return pq.read_schema(handle)

    def table_schema(self, ref: TableRef) -> pa.Schema:
        """The columns of a committed table (for a partitioned one, the union over its partitions)."""
        if ref.is_partitioned:
            if ref.schema_uri is None:
                raise ValueError(f"{ref.qualified_name} has no schema yet")
            with self.storage.open_input(ref.schema_uri) as handle:
                return pq.read_schema(handle)
        with self.storage.open_input(self.files(ref)[0]) as handle:
            return pq.read_schema(handle)

    def _read_pointer(self, zone: str, name: str) -> dict | None:
        if self._pending is not None and (zone, name) in self._pending:  # this transaction's own commit
            return self._pending[(zone, name)]
        raw = self.storage.read_bytes(Storage.join(self.table_uri(zone, name), _POINTER))
        return json.loads(raw) if raw is not None else None

    def _partitioned_ref(self, zone: str, name: str, pointer: dict) -> TableRef:
        table = self.table_uri(zone, name)
        partitions = tuple(
            Partition(_partition_values(key), Storage.join(table, "versions", version, key), version)
            for key, version in sorted(pointer["partitions"].items())
        )
        schema = Storage.join(table, pointer["schema"]) if pointer.get("schema") else None
        types = tuple((c, pointer.get("partition_types", {}).get(c, "VARCHAR")) for c in pointer["partition_by"])
        return TableRef(zone, name, table, partitions=partitions, partition_by=tuple(pointer["partition_by"]),
                        commit_id=pointer["version"], schema_uri=schema, partition_types=types)

    def current(self, zone: str, name: str) -> TableRef | None:
        table = self.table_uri(zone, name)
        pointer = self._read_pointer(zone, name)
        if pointer is not None and "partitions" in pointer:
            return self._partitioned_ref(zone, name, pointer)
        pending = self._pending is not None and (zone, name) in self._pending
        if self.catalog is not None and not pending:
            location = self.catalog.location(zone, name)
            return TableRef(zone, name, location) if location else None
        if pointer is None:
            return None
        return TableRef(zone, name, Storage.join(table, "versions", pointer["version"]))

    def require(self, zone: str, name: str) -> TableRef:
        ref = self.current(zone, name)
        if ref is None:
            raise FileNotFoundError(f"table {zone}.{name} does not exist in the lake at {self}")
        return ref

    def tables(self, zone: str | None = None) -> list[TableRef]:
        refs: list[TableRef] = []
        for z in (zone,) if zone else ZONES:
            names = {n for n, is_dir in self.storage.children(Storage.join(self.location, z)) if is_dir}
            if self.catalog is not None:
                names |= set(self.catalog.table_names(z))
            for name in sorted(names):
                ref = self.current(z, name)
                if ref is not None:
                    refs.append(ref)
        return refs

    # -- readers and writers --------------------------------------------------------------------
    def read_arrow(self, ref: TableRef, columns: list[str] | None = None) -> pa.Table:
        """Read a committed version (all its data files) into memory. Only for tables that stay
        small (per customer at most); large ones are read by an engine (DuckDB, Spark)."""
        if ref.is_partitioned:
            return self._read_partitions(ref, columns)
        tables = []
        for uri in self.files(ref):
            with self.storage.open_input(uri) as handle:
                tables.append(pq.read_table(handle, columns=columns))
        if not tables:
            raise ValueError(f"{ref.qualified_name} version {ref.version} holds no Parquet files")
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]

    def _read_partitions(self, ref: TableRef, columns: list[str] | None) -> pa.Table:
        schema = self.table_schema(ref)
        if columns is not None:
            schema = pa.schema([schema.field(c) for c in columns])
        tables = [schema.empty_table()]
        for partition in ref.partitions:
            values = dict(partition.values)
            for uri in self.storage.files(partition.uri):
                with self.storage.open_input(uri) as handle:
                    data_columns = [c for c in schema.names if c not in values] if columns is not None else None
                    table = pq.read_table(handle, columns=data_columns)
                for name, value in partition.values:
                    if name in schema.names and name not in table.column_names:
                        column = pa.array([value] * table.num_rows, pa.string()).cast(schema.field(name).type)
                        table = table.append_column(name, column)
                tables.append(table)
        merged = pa.concat_tables(tables, promote_options="default")
        return merged.select(schema.names)

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

    def write_partitions(self, zone: str, name: str, partition_by: tuple[str, ...], table: pa.Table, *,
                         drop: set[str] | tuple[str, ...] = ()) -> TableRef:
        """Write the rows of `table` as new versions of the partitions they fall in (the partition
        columns are columns of `table`), replacing those partitions, drop `drop`, and commit."""
        import pyarrow.compute as pc

        add: dict[str, str] = {}
        if table.num_rows:
            keys = table.select(list(partition_by)).group_by(list(partition_by)).aggregate([])
            version_dir = self.new_version(zone, name)
            for row in keys.to_pylist():
                values = {c: str(row[c]) for c in partition_by}
                mask = None
                for column in partition_by:
                    match = pc.equal(pc.cast(table.column(column), pa.string()), values[column])
                    mask = match if mask is None else pc.and_(mask, match)
                key = partition_key(values)
                rows = table.filter(mask).drop_columns(list(partition_by))  # the folder names carry them
                self.write_version(Storage.join(version_dir, key), rows)
                add[key] = version_dir
        return self.commit_partitions(zone, name, partition_by, add=add, drop=drop, schema=table.schema)

    def vacuum(self, keep: int = 2, min_age_seconds: float = 3600.0) -> list[str]:
        """Delete versions that are neither current nor among the newest `keep`, and orphans of
        crashed writers older than `min_age_seconds` (a writer still running is younger). For a
        partitioned table: every partition version that neither the current commit nor the one
        before it references. Versions a run in flight on AWS recorded at its start stay: its
        rollback would put them back (rfmlake.lake.rollback)."""
        from rfmlake.lake.rollback import pinned_versions

        removed: list[str] = []
        now = time.time()
        pinned = pinned_versions(self)
        for zone in ZONES:
            for table_name, is_dir in self.storage.children(Storage.join(self.location, zone)):
                if not is_dir:
                    continue
                pointer = self._read_pointer(zone, table_name)
                kept = {version for z, n, version in pinned if (z, n) == (zone, table_name)}
                if pointer is not None and "partitions" in pointer:
                    removed.extend(self._vacuum_partitions(zone, table_name, pointer, now, min_age_seconds, keep,
                                                           kept))
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
                for version in [v for v in stale if v not in kept]:
                    uri = Storage.join(versions_dir, version)
                    if self._old(uri, version, now, min_age_seconds) or (current is not None and version < current):
                        self.storage.delete_dir(uri)
                        removed.append(uri)
        return removed

    def _old(self, uri: str, version: str, now: float, min_age_seconds: float) -> bool:
        # Local folders carry their own mtime; S3 prefixes do not, so the id's time is used.
        written = self.storage.mtime(uri) if self.is_local else _version_time(version)
        return written is not None and now - written >= min_age_seconds

    def _vacuum_partitions(self, zone: str, name: str, pointer: dict, now: float, min_age_seconds: float,
                           keep: int, pinned: frozenset[str] | set[str] = frozenset()) -> list[str]:
        versions_dir = Storage.join(self.table_uri(zone, name), "versions")
        depth = len(pointer["partition_by"])
        live: set[tuple[str, str]] = set(pointer["partitions"].items())
        if keep > 1:  # the versions the last commit replaced, for readers that started before it
            live |= set(pointer.get("previous", {}).items())
        live_versions = {version for _, version in live}
        commit = pointer["version"]
        removed: list[str] = []

        def stale_partitions(folder: str, version: str, prefix: str, level: int) -> None:
            for child, is_dir in self.storage.children(folder):
                if not is_dir or "=" not in child:  # partition folders (`_load_date=...` included)
                    continue
                key = f"{prefix}/{child}" if prefix else child
                uri = Storage.join(folder, child)
                if level + 1 < depth:
                    stale_partitions(uri, version, key, level + 1)
                elif (key, version) not in live:
                    self.storage.delete_dir(uri)
                    removed.append(uri)

        for version, is_dir in self.storage.children(versions_dir):
            if not is_dir:
                continue
            uri = Storage.join(versions_dir, version)
            if version in pinned:
                continue  # a start version of the run in flight: whole, as its pointer names it
            if version in live_versions:
                stale_partitions(uri, version, "", 0)  # its replaced or dropped partitions
            elif version < commit or self._old(uri, version, now, min_age_seconds):
                # Older than the current commit: replaced or dropped; younger: a writer still running
                # (or crashed), removed once old enough.
                self.storage.delete_dir(uri)
                removed.append(uri)
        schema_dir = Storage.join(self.table_uri(zone, name), "_schema")
        for child, is_dir in self.storage.children(schema_dir):
            if (not is_dir and f"_schema/{child}" != pointer.get("schema") and child < commit
                    and f"_schema/{child}" not in pinned):
                self.storage.delete_file(Storage.join(schema_dir, child))
        return removed


def _merge_schemas(stored: pa.Schema | None, new: pa.Schema | None) -> pa.Schema | None:
    """The stored columns in their order, then new columns; a column's first type wins."""
    if stored is None:
        return new
    if new is None:
        return stored
    fields = list(stored)
    names = set(stored.names)
    fields.extend(f for f in new if f.name not in names)
    return pa.schema(fields)


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
