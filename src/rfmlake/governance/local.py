"""Local enforcement of the persona grants: a DuckDB connection that holds only what a persona may
read, and no way to reach the files behind it.

Views over read_parquet stop working once external access is disabled (DuckDB 1.5 checks the
file access when the view is queried), so the permitted columns are loaded into in-memory tables
first; then file access is disabled and the configuration locked, so read_parquet on a lake path,
COPY, ATTACH and INSTALL all fail, and no query shape can reach a column that was never loaded.

With external access disabled DuckDB still lets a connection write into its temp directory (`.tmp`
under the working folder by default: COPY ... TO '.tmp/x.csv' and EXPORT DATABASE worked there), so a
persona connection has none: it never spills to disk, and no path at all is writable. Persistent
secrets (written under ~/.duckdb) are off too.
"""

from __future__ import annotations

import duckdb

from rfmlake.governance.model import GovernanceConfig, load_governance
from rfmlake.lake.tables import ZONES, Lake, parquet_scan


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, scan: str) -> list[str]:
    return [row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]


def visible_columns(config: GovernanceConfig, persona: str, zone: str, table: str, columns: list[str]) -> list[str]:
    """The columns of a table the persona may SELECT, in table order."""
    return [c for c in columns if config.can_select(persona, zone, table, c)]


def connect_as(
    lake: Lake, persona: str, config: GovernanceConfig | None = None, zones: tuple[str, ...] = ZONES
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with `<zone>.<table>` tables holding only the persona's
    columns; tables with no visible column are absent. File access is off and locked."""
    config = config or load_governance()
    config.persona(persona)  # unknown persona -> GovernanceError naming the known ones
    con = duckdb.connect(":memory:", config={"temp_directory": "", "allow_persistent_secrets": False})
    con.execute("SET TimeZone = 'UTC'")
    for zone in zones:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(zone)}")
        for ref in lake.tables(zone):
            scan = parquet_scan(ref)
            allowed = visible_columns(config, persona, zone, ref.name, _columns(con, scan))
            if not allowed:
                continue
            select = ", ".join(_quote(c) for c in allowed)
            con.execute(
                f"CREATE TABLE {_quote(zone)}.{_quote(ref.name)} AS SELECT {select} FROM {scan}"
            )
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")
    return con


def uncovered_columns(config: GovernanceConfig, lake: Lake) -> list[str]:
    """zone.table.column of every column in the lake the config does not tag (nobody but an
    unrestricted grant could read it, and Lake Formation would not know its sensitivity)."""
    con = duckdb.connect(":memory:")
    missing: list[str] = []
    for ref in lake.tables():
        for column in _columns(con, parquet_scan(ref)):
            if config.column_sensitivity(ref.zone, ref.name, column) is None:
                missing.append(f"{ref.qualified_name}.{column}")
    return missing
