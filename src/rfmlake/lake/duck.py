"""DuckDB connections that read the lake where it is: local files, or `s3://` objects through the
httpfs extension (rfmlake.lake.duckdb_s3). DuckDB streams Parquet by row group and spills to disk
past its memory limit, so a stage can scan a table that grows with the data without copying it into
a workspace or loading it into Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import boto3
    import pyarrow as pa

    from rfmlake.lake.tables import Lake


def reads_s3(lake: Lake) -> bool:
    """Whether readers of `lake` may meet s3:// files: a lake on S3, or a workspace that reads
    some tables in place (rfmlake.lake.workspace.WorkspaceLake)."""
    return not lake.is_local or getattr(lake, "remote", None) is not None


def bound_memory(con: duckdb.DuckDBPyConnection, memory_limit: str | None, temp_dir: str | Path | None) -> None:
    """`memory_limit` (e.g. "1GB") bounds what DuckDB holds before it spills to `temp_dir` (its
    default otherwise: 80% of the machine's memory, and a .tmp folder in the working directory)."""
    if memory_limit:
        con.execute("SET memory_limit = '" + memory_limit.replace("'", "''") + "'")
    if temp_dir is not None:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory = '" + str(temp_dir).replace("'", "''") + "'")


def connect_duckdb(lake: Lake | None = None, database: str | Path = ":memory:", *,
                   memory_limit: str | None = None, temp_dir: str | Path | None = None,
                   boto3_session: boto3.Session | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in UTC that can read `lake`'s tables wherever their files are, within
    `memory_limit` (bound_memory)."""
    con = duckdb.connect(str(database))
    try:
        con.execute("SET TimeZone = 'UTC'")
        bound_memory(con, memory_limit, temp_dir)
        if lake is not None and reads_s3(lake):
            from rfmlake.lake.duckdb_s3 import enable_s3

            enable_s3(con, boto3_session)
    except BaseException:
        con.close()
        raise
    return con


# Whole results and streamed results (docs/adr/0024). DuckDB 1.5 deadlocks a *streamed* query whose
# plan has a UNION ALL with a join (or another operator that ends a pipeline) in more than one
# branch, once the result outgrows the streaming buffer: every branch waits for the buffer to drain,
# and nothing drains it until one branch is the last pipeline left (the 10M bench's recommendations
# stage hung there). con.execute() always streams; a relation's whole-result fetches do not.


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | dict[str, Any] | None = None
          ) -> duckdb.DuckDBPyRelation:
    """The query `sql` as a relation to read whole: its to_arrow_table(), fetch_arrow_table(), df()
    and fetchall() run the query to the end before returning. Use it instead of
    `con.execute(sql).fetchall()` (and the like) for any query over the lake; stream with batches()."""
    return con.sql(sql, params=params)


def batches(con: duckdb.DuckDBPyConnection, sql: str, rows: int) -> Iterator[pa.RecordBatch]:
    """The rows of the query `sql` in Arrow record batches of about `rows`, streamed on a cursor of
    `con` in bounded memory. A query whose plan has a UNION (which can deadlock streamed) or an
    ORDER BY (streamed, DuckDB sorts in memory: the 10M bench's 2.2M profiles, about 4 GB, ran out of
    a 3 GB limit; held first, they stream in 30 s) is first held in a temp table, which spills to
    disk past the memory limit, and streamed from that in the same order. The cursor keeps `con`'s
    TimeZone (a session setting a cursor does not inherit: connect_duckdb's UTC)."""
    zone = str(con.execute("SELECT current_setting('TimeZone')").fetchone()[0])  # type: ignore[index]
    cursor = con.cursor()
    try:
        cursor.execute("SET TimeZone = '" + zone.replace("'", "''") + "'")
        plan = json.loads(cursor.execute("EXPLAIN (FORMAT JSON) " + sql).fetchall()[0][1])
        if {"UNION", "ORDER_BY"} & _operators(plan):
            cursor.execute(f"CREATE TEMP TABLE __rfmlake_streamed AS {sql}")
            sql = "SELECT * FROM __rfmlake_streamed"
        yield from cursor.execute(sql).fetch_record_batch(rows)
    finally:
        cursor.close()


def _operators(nodes: list[dict[str, Any]]) -> set[str]:
    """The operator names of a physical plan (EXPLAIN (FORMAT JSON))."""
    names: set[str] = set()
    while nodes:
        node = nodes.pop()
        names.add(str(node.get("name", "")))
        nodes.extend(node.get("children", ()))
    return names
