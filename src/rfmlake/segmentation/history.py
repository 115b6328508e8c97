"""gold.segment_membership_history and gold.segment_migration: append-only, one partition per
as_of date (docs/adr/0010), so a run pays for its own as_of, not for every run before it.

A run writes its as_of's memberships as one partition of the history (a re-run for the same as_of
replaces it: idempotent) and the migration from the previous as_of present in the history to its
own as one partition of gold.segment_migration, computed by DuckDB from those two partitions. A run
for an as_of between two existing ones (a backfill) also replaces the migration into the next
as_of, so the table keeps holding every consecutive pair.

Lakes written before the history was partitioned are converted on the first run that writes it
(docs/adr/0015-gold-stages-bounded-memory.md): each as_of of the old table becomes a partition, copied
by DuckDB, and one pointer write (`commit_partitions(replace=True)`) swaps the table over.

As everywhere in the lake, partition values live in the folder names, not in the data files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake, TableRef
from rfmlake.lake.duck import batches, connect_duckdb, fetch
from rfmlake.lake.storage import S3_SCHEME, Storage, is_s3
from rfmlake.lake.tables import parquet_scan, partition_key
from rfmlake.segmentation.migration import (
    DIMENSIONS,
    MIGRATION_PARTITION_BY,
    MIGRATION_SCHEMA,
    MIGRATION_TABLE,
    check_dimension,
    migration_table,
)
from rfmlake.segmentation.segment import HISTORY_SCHEMA, HISTORY_TABLE

HISTORY_PARTITION_BY: tuple[str, ...] = ("as_of_date",)
_BATCH_ROWS = 100_000


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _read(globs: list[str]) -> str:
    return f"read_parquet([{', '.join(map(_quote, globs))}], union_by_name = true)"


@dataclass(frozen=True)
class History:
    """The committed history as sources per as_of date: DuckDB table expressions over one
    partition each (or, for a lake not converted yet, a filter of the unpartitioned table)."""

    ref: TableRef | None

    @property
    def is_legacy(self) -> bool:
        return self.ref is not None and not self.ref.is_partitioned

    def dates(self, con: duckdb.DuckDBPyConnection | None = None) -> list[date]:
        if self.ref is None:
            return []
        if self.ref.is_partitioned:  # from the pointer: no data read
            return sorted(date.fromisoformat(dict(p.values)["as_of_date"]) for p in self.ref.partitions)
        assert con is not None, "an unpartitioned history is listed with a DuckDB connection"
        rows = fetch(con, f"SELECT DISTINCT as_of_date FROM {parquet_scan(self.ref)} ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    def source(self, day: date) -> str:
        assert self.ref is not None
        if self.ref.is_partitioned:
            key = partition_key({"as_of_date": day.isoformat()})
            partition = next(p for p in self.ref.partitions if p.key == key)
            return _read([Storage.join(partition.uri, "*.parquet")])
        return f"(SELECT * FROM {parquet_scan(self.ref)} WHERE as_of_date = DATE '{day.isoformat()}')"


def current_history(lake: Lake) -> History:
    return History(lake.current("gold", HISTORY_TABLE))


def migration_between(lake: Lake, from_date: date, to_date: date, dimension: str = "rfm_segment") -> pd.DataFrame:
    """Counts per (from_segment, to_segment) between two as_of dates of the history, computed by
    DuckDB from their two partitions (what `rfmlake segments diff` prints)."""
    check_dimension(dimension)
    history = current_history(lake)
    if history.ref is None:
        raise RfmlakeError(f"no gold.{HISTORY_TABLE} in the lake at {lake} (run `rfmlake run` first)")
    con = connect_duckdb(lake)
    try:
        available = history.dates(con)
        for name, wanted in (("--from", from_date), ("--to", to_date)):
            if wanted not in available:
                listed = ", ".join(d.isoformat() for d in available) or "none"
                raise RfmlakeError(f"{name} {wanted.isoformat()} is not an as_of date of "
                                   f"gold.{HISTORY_TABLE} (available: {listed})")
        if from_date >= to_date:
            raise RfmlakeError(f"--from ({from_date.isoformat()}) must be before --to ({to_date.isoformat()})")
        table = migration_table(con, history.source(from_date), history.source(to_date), from_date, to_date,
                                (dimension,))
    finally:
        con.close()
    frame = table.to_pandas()
    return frame.astype({"from_segment": "object", "to_segment": "object"}).where(frame.notna(), None)


def record_history(lake: Lake, rows: pa.Table) -> tuple[TableRef, TableRef]:
    """Write `rows` (one as_of's memberships, HISTORY_SCHEMA) as that as_of's partition of the
    history and the migrations into it (and out of it, for a backfill) as partitions of
    gold.segment_migration. Everything is written before the two commits."""
    rows = rows.select(HISTORY_SCHEMA.names).cast(HISTORY_SCHEMA)
    days = set(rows.column("as_of_date").to_pylist())
    if len(days) != 1:
        raise RfmlakeError(f"a run records one as_of date in gold.{HISTORY_TABLE}, got {sorted(days)}")
    (as_of,) = days
    convert_unpartitioned(lake)
    history = current_history(lake)
    con = connect_duckdb(lake)
    try:
        sources = {day: history.source(day) for day in history.dates()}
        key = partition_key({"as_of_date": as_of.isoformat()})
        version = lake.new_version("gold", HISTORY_TABLE)
        lake.write_version(Storage.join(version, key), rows.drop_columns(list(HISTORY_PARTITION_BY)))
        sources[as_of] = _read([Storage.join(version, key, "*.parquet")])
        days_sorted = sorted(sources)
        at = days_sorted.index(as_of)
        migration_add: dict[str, str] = {}
        migration_version = lake.new_version("gold", MIGRATION_TABLE)
        for before, after in [(days_sorted[i - 1], days_sorted[i]) for i in (at, at + 1) if 0 < i < len(days_sorted)]:
            to_key = partition_key({"to_as_of_date": after.isoformat()})
            table = migration_table(con, sources[before], sources[after], before, after)
            lake.write_version(Storage.join(migration_version, to_key),
                               table.drop_columns(list(MIGRATION_PARTITION_BY)))
            migration_add[to_key] = migration_version
    finally:
        con.close()
    # An as_of with nothing before it has no migration into it.
    stale = set() if at else {partition_key({"to_as_of_date": as_of.isoformat()})}
    history_ref = lake.commit_partitions("gold", HISTORY_TABLE, HISTORY_PARTITION_BY, add={key: version},
                                         schema=HISTORY_SCHEMA)
    migration_ref = lake.commit_partitions("gold", MIGRATION_TABLE, MIGRATION_PARTITION_BY, add=migration_add,
                                           drop=stale, schema=MIGRATION_SCHEMA)
    return history_ref, migration_ref


# -- lakes from before partitioning -----------------------------------------------------------------
def _copy_partition(lake: Lake, con: duckdb.DuckDBPyConnection, version: str, key: str, select: str,
                    schema: pa.Schema) -> None:
    """Stream one partition's rows from DuckDB into `version`/`key`, batch by batch."""
    import pyarrow.parquet as pq

    folder = Storage.join(version, key)
    lake.storage.make_dir(folder)
    target = Storage.join(folder, "part-00000.parquet")
    path = target.removeprefix(S3_SCHEME) if lake.storage.s3 else target
    with pq.ParquetWriter(path, schema, filesystem=lake.storage.fs, compression="zstd") as writer:
        for batch in batches(con, select, _BATCH_ROWS):
            writer.write_batch(batch.cast(schema))


def _data_schema(schema: pa.Schema, partition_by: tuple[str, ...]) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in partition_by])


def _convert_history(lake: Lake, con: duckdb.DuckDBPyConnection, ref: TableRef) -> dict[str, str]:
    """One partition per as_of of an unpartitioned history, each copied by DuckDB."""
    history = History(ref)
    version = lake.new_version("gold", HISTORY_TABLE)
    schema = _data_schema(HISTORY_SCHEMA, HISTORY_PARTITION_BY)
    add = {}
    for day in history.dates(con):
        key = partition_key({"as_of_date": day.isoformat()})
        _copy_partition(lake, con, version, key,
                        f"SELECT {', '.join(schema.names)} FROM {history.source(day)} ORDER BY customer_id", schema)
        add[key] = version
    return add


def _convert_migration(lake: Lake, con: duckdb.DuckDBPyConnection, ref: TableRef) -> dict[str, str]:
    scan = parquet_scan(ref)
    schema = _data_schema(MIGRATION_SCHEMA, MIGRATION_PARTITION_BY)
    rank = " ".join(f"WHEN '{d}' THEN {i}" for i, d in enumerate(DIMENSIONS))
    version = lake.new_version("gold", MIGRATION_TABLE)
    add = {}
    for (day,) in fetch(con, f"SELECT DISTINCT to_as_of_date FROM {scan} ORDER BY 1").fetchall():
        key = partition_key({"to_as_of_date": day.isoformat()})
        _copy_partition(lake, con, version, key,
                        f"SELECT {', '.join(schema.names)} FROM {scan} WHERE to_as_of_date = DATE '{day.isoformat()}' "
                        f"ORDER BY CASE dimension {rank} END, from_segment NULLS LAST, to_segment NULLS LAST", schema)
        add[key] = version
    return add


_CONVERSIONS = ((HISTORY_TABLE, HISTORY_PARTITION_BY, HISTORY_SCHEMA, _convert_history),
                (MIGRATION_TABLE, MIGRATION_PARTITION_BY, MIGRATION_SCHEMA, _convert_migration))


def convert_unpartitioned(lake: Lake) -> list[str]:
    """Convert the history and migration tables of a lake written before they were partitioned:
    the same rows, one partition per date, committed at once (a change of layout only, so a run
    that fails after it leaves the lake's content as it was). Done where the table lives: in a
    workspace that reads the history in place, on S3. Returns the tables converted."""
    converted = []
    for name, partition_by, schema, convert in _CONVERSIONS:
        ref = lake.current("gold", name)
        if ref is None or ref.is_partitioned:
            continue
        remote: Lake | None = getattr(lake, "remote", None)
        owner = remote if remote is not None and is_s3(ref.uri) else lake
        con = connect_duckdb(owner)
        try:
            add = convert(owner, con, ref)
        finally:
            con.close()
        # One pointer write replaces the unpartitioned table (a rebuild, in ADR 0010's terms).
        owner.commit_partitions("gold", name, partition_by, add=add, schema=schema, replace=True)
        converted.append(f"gold.{name}")
    return converted


__all__ = ["HISTORY_PARTITION_BY", "History", "convert_unpartitioned", "current_history", "migration_between",
           "record_history"]
