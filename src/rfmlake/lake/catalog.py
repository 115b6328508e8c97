"""The local catalog: DuckDB schemas `bronze`, `silver`, `gold` with one view per committed table,
so a query written for Athena (`SELECT ... FROM gold.customer_rfm`) runs locally unchanged."""

from __future__ import annotations

from pathlib import Path

import duckdb

from rfmlake.lake.tables import ZONES, Lake, parquet_scan


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def register_views(con: duckdb.DuckDBPyConnection, lake: Lake, zones: tuple[str, ...] = ZONES) -> list[str]:
    """Create or replace a view per committed table. Returns the qualified names registered."""
    names: list[str] = []
    for zone in zones:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(zone)}")
        for ref in lake.tables(zone):
            con.execute(
                f"CREATE OR REPLACE VIEW {_quote(zone)}.{_quote(ref.name)} AS SELECT * FROM {parquet_scan(ref)}"
            )
            names.append(ref.qualified_name)
    return names


def connect(
    lake: Lake, database: str | Path = ":memory:", zones: tuple[str, ...] = ZONES, persona: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over the lake's current table versions. With a persona, only what that
    persona may read (lakeformation/personas.yaml), with file access locked (rfmlake.governance.local)."""
    if persona is not None:
        from rfmlake.governance.local import connect_as

        return connect_as(lake, persona, zones=zones)
    con = duckdb.connect(str(database))
    con.execute("SET TimeZone = 'UTC'")
    register_views(con, lake, zones)
    return con
