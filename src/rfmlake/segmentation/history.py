"""gold.segment_membership_history and gold.segment_migration: append-only, one partition per
as_of date (docs/adr/0010), so a run pays for its own as_of, not for every run before it.

A run writes its as_of's memberships as one partition of the history (a re-run for the same as_of
replaces it: idempotent) and the migration from the previous as_of present in the history to its
own as one partition of gold.segment_migration, computed by DuckDB from those two partitions. A run
for an as_of between two existing ones (a backfill) also replaces the migration into the next
as_of, so the table keeps holding every consecutive pair.

Lakes written before the history was partitioned are converted on the first run that writes it
(docs/adr/gold-stages-bounded-memory.md): each as_of of the old table becomes a partition,
copied by DuckDB, then the table's pointer is replaced. The old pointer is kept beside it until
the new one is written, so a crash part-way is resumed by the next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake, TableRef
from rfmlake.lake.duck import connect_duckdb
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
_POINTER = "_current"  # rfmlake.lake.tables' pointer file (see _replace_unpartitioned)
_LEGACY_POINTER = "_current.unpartitioned"
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
        rows = con.execute(f"SELECT DISTINCT as_of_date FROM {parquet_scan(self.ref)} ORDER BY 1").fetchall()
        return [row[0] for row in rows]

    def source(self, day: date) -> str:
        assert self.ref is not None
        if self.ref.is_partitioned:
            key = partition_key({"as_of_date": day.isoformat()})
            partition = next(p for p in self.ref.partitions if p.key == key)
            return _read([Storage.join(partition.uri, "*.parquet")])
        return f"(SELECT * FROM {parquet_scan(self.ref)} WHERE as_of_date = DATE '{day.isoformat()}')"


def current_history(lake: Lake) -> History:
    ref = lake.current("gold", HISTORY_TABLE)
    if ref is None:
        ref = _interrupted_conversion(lake, HISTORY_TABLE)
    return History(ref)


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
        version = lake.new_partition_version("gold", HISTORY_TABLE, {"as_of_date": as_of.isoformat()})
        lake.write_version(version, rows)
        sources[as_of] = _read([Storage.join(version, "*.parquet")])
        days_sorted = sorted(sources)
        at = days_sorted.index(as_of)
        migration_add: dict[str, str] = {}
        for before, after in [(days_sorted[i - 1], days_sorted[i]) for i in (at, at + 1) if 0 < i < len(days_sorted)]:
            values = {"to_as_of_date": after.isoformat()}
            folder = lake.new_partition_version("gold", MIGRATION_TABLE, values)
            lake.write_version(folder, migration_table(con, sources[before], sources[after], before, after))
            migration_add[partition_key(values)] = folder
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
def _copy_partition(lake: Lake, con: duckdb.DuckDBPyConnection, name: str, column: str, day: date,
                    select: str, schema: pa.Schema) -> str:
    """Stream one partition's rows from DuckDB into a new partition version, batch by batch."""
    import pyarrow.parquet as pq

    values = {column: day.isoformat()}
    folder = lake.new_partition_version("gold", name, values)
    lake.storage.make_dir(folder)
    target = Storage.join(folder, "part-00000.parquet")
    path = target.removeprefix(S3_SCHEME) if lake.storage.s3 else target
    reader = con.execute(select).fetch_record_batch(_BATCH_ROWS)
    with pq.ParquetWriter(path, schema, filesystem=lake.storage.fs, compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch.cast(schema))
    return folder


def _convert_history(lake: Lake, con: duckdb.DuckDBPyConnection, ref: TableRef) -> dict[str, str]:
    """One partition per as_of of an unpartitioned history, each copied by DuckDB."""
    history = History(ref)
    columns = ", ".join(HISTORY_SCHEMA.names)
    return {partition_key({"as_of_date": day.isoformat()}): _copy_partition(
                lake, con, HISTORY_TABLE, "as_of_date", day,
                f"SELECT {columns} FROM {history.source(day)} ORDER BY customer_id", HISTORY_SCHEMA)
            for day in history.dates(con)}


def _convert_migration(lake: Lake, con: duckdb.DuckDBPyConnection, ref: TableRef) -> dict[str, str]:
    scan = parquet_scan(ref)
    columns = ", ".join(MIGRATION_SCHEMA.names)
    rank = " ".join(f"WHEN '{d}' THEN {i}" for i, d in enumerate(DIMENSIONS))
    days = [row[0] for row in con.execute(f"SELECT DISTINCT to_as_of_date FROM {scan} ORDER BY 1").fetchall()]
    return {partition_key({"to_as_of_date": day.isoformat()}): _copy_partition(
                lake, con, MIGRATION_TABLE, "to_as_of_date", day,
                f"SELECT {columns} FROM {scan} WHERE to_as_of_date = DATE '{day.isoformat()}' "
                f"ORDER BY CASE dimension {rank} END, from_segment NULLS LAST, to_segment NULLS LAST",
                MIGRATION_SCHEMA)
            for day in days}


_CONVERSIONS = ((HISTORY_TABLE, HISTORY_PARTITION_BY, HISTORY_SCHEMA, _convert_history),
                (MIGRATION_TABLE, MIGRATION_PARTITION_BY, MIGRATION_SCHEMA, _convert_migration))


def convert_unpartitioned(lake: Lake) -> list[str]:
    """Convert the history and migration tables of a lake written before they were partitioned:
    the same rows, one partition per date, committed at once (a change of layout only, so a run
    that fails after it leaves the lake's content as it was). Done where the table lives: in a
    workspace that reads the history in place, on S3. Returns the tables converted."""
    converted = []
    for name, partition_by, schema, convert in _CONVERSIONS:
        ref = lake.current("gold", name) or _interrupted_conversion(lake, name)
        if ref is None or ref.is_partitioned:
            continue
        remote: Lake | None = getattr(lake, "remote", None)
        owner = remote if remote is not None and is_s3(ref.uri) else lake
        con = connect_duckdb(owner)
        try:
            add = convert(owner, con, ref)
        finally:
            con.close()
        _commit_replacing_unpartitioned(owner, name, partition_by, add, schema)
        converted.append(f"gold.{name}")
    return converted


def _interrupted_conversion(lake: Lake, name: str) -> TableRef | None:
    """The unpartitioned version a conversion was replacing when it stopped (local lakes: with a
    Glue catalog the table's location still names it, and `Lake.current` returns it)."""
    raw = lake.storage.read_bytes(Storage.join(lake.table_uri("gold", name), _LEGACY_POINTER))
    if raw is None:
        return None
    version = json.loads(raw)["version"]
    return TableRef("gold", name, Storage.join(lake.table_uri("gold", name), "versions", version))


def _commit_replacing_unpartitioned(lake: Lake, name: str, partition_by: tuple[str, ...], add: dict[str, str],
                                    schema: pa.Schema) -> TableRef:
    # Lake.commit_partitions refuses a table committed unpartitioned (ADR 0010). Its pointer is set
    # aside first and kept until the partitioned pointer is written, so a crash in between is
    # resumed from it (_interrupted_conversion); the old version stays until vacuum removes it.
    table = lake.table_uri("gold", name)
    pointer = lake.storage.read_bytes(Storage.join(table, _POINTER))
    if pointer is not None:
        lake.storage.write_bytes(Storage.join(table, _LEGACY_POINTER), pointer)
        lake.storage.delete_file(Storage.join(table, _POINTER))
    ref = lake.commit_partitions("gold", name, partition_by, add=add, schema=schema)
    lake.storage.delete_file(Storage.join(table, _LEGACY_POINTER))
    return ref


__all__ = ["HISTORY_PARTITION_BY", "History", "convert_unpartitioned", "current_history", "migration_between",
           "record_history"]
