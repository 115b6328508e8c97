"""The local catalog: DuckDB schemas `bronze`, `silver`, `gold` with one view per committed table,
so a query written for Athena (`SELECT ... FROM gold.customer_rfm`) runs locally unchanged. A lake on
S3 gets the same views over its s3:// files, read in place through httpfs (rfmlake.lake.duckdb_s3), as
do the tables a workspace reads in place (rfmlake.lake.workspace)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from rfmlake.lake.duck import bound_memory, reads_s3
from rfmlake.lake.storage import is_s3
from rfmlake.lake.tables import ZONES, Lake, TableRef, parquet_scan

if TYPE_CHECKING:
    import boto3


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _scan(lake: Lake, ref: TableRef) -> str:
    if not is_s3(ref.uri) or ref.is_partitioned:
        return parquet_scan(ref)
    # A version on S3 may hold files Athena wrote (dbt-athena, CTAS), whose names have no .parquet
    # suffix: read the version's data files by name (hidden and marker files are not listed).
    files = lake.files(ref)
    if not files:
        raise ValueError(f"{ref.qualified_name} version {ref.version} holds no data files")
    listed = ", ".join("'" + uri.replace("'", "''") + "'" for uri in files)
    return f"read_parquet([{listed}], union_by_name = true)"


def register_views(con: duckdb.DuckDBPyConnection, lake: Lake, zones: tuple[str, ...] = ZONES) -> list[str]:
    """Create or replace a view per committed table. Returns the qualified names registered."""
    names: list[str] = []
    for zone in zones:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(zone)}")
        for ref in lake.tables(zone):
            con.execute(
                f"CREATE OR REPLACE VIEW {_quote(zone)}.{_quote(ref.name)} AS SELECT * FROM {_scan(lake, ref)}"
            )
            names.append(ref.qualified_name)
    return names


def connect(
    lake: Lake, database: str | Path = ":memory:", zones: tuple[str, ...] = ZONES, persona: str | None = None,
    boto3_session: boto3.Session | None = None, *, memory_limit: str | None = None,
    temp_dir: str | Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the lake's current table versions. With a persona, only what that
    persona may read (lakeformation/personas.yaml), with file access locked (rfmlake.governance.local).
    A lake on S3 is read in place, with the session's (or the default chain's) credentials.
    `memory_limit` (a pipeline stage passes settings.duckdb_memory_limit) bounds what DuckDB holds
    before it spills to `temp_dir` (rfmlake.lake.duck.bound_memory)."""
    if persona is not None:
        from rfmlake.governance.local import connect_as

        return connect_as(lake, persona, zones=zones)
    con = duckdb.connect(str(database))
    try:
        con.execute("SET TimeZone = 'UTC'")
        bound_memory(con, memory_limit, temp_dir)
        if reads_s3(lake):
            from rfmlake.lake.duckdb_s3 import enable_s3

            enable_s3(con, boto3_session)
        register_views(con, lake, zones)
    except BaseException:
        con.close()
        raise
    return con
