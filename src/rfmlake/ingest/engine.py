"""The engines that run the ingest transforms: DuckDB (the local default) and Spark (Glue).

The transforms are SQL written once (rfmlake.ingest.sql, conform, access_logs, aws_guidance);
an engine runs a statement as written (DuckDB) or transpiled by sqlglot (Spark SQL), keeps named
intermediate relations, scans lake tables and writes Parquet, partitioned or not. What differs
between engines lives here and nowhere else: reading landing files into rows of text, and I/O.

docs/adr/0011-one-sql-two-engines.md records why: tuned Spark was about 12x slower than one DuckDB
process on one machine; on Glue the same SQL runs on Spark at any scale.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rfmlake.errors import LandingError, PipelineError
from rfmlake.ingest.sql import ident, lit

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

    from rfmlake.contract.landing import LandingFile
    from rfmlake.lake.tables import TableRef

log = logging.getLogger(__name__)

CORRUPT_COLUMN = "_corrupt_record"
# Never inside a JSON text line nor a log line: read each line whole as one column.
_LINE_DELIMITER = "\x1e\x1f"


def _failed(query: str, exc: Exception) -> PipelineError:
    return PipelineError(f"DuckDB failed: {str(exc).splitlines()[0]}\nin: {query[:800]}")


@dataclass(frozen=True)
class RawFile:
    """One landing file to read as rows of text, with its bronze partition values."""

    file: LandingFile
    load_date: str
    file_key: str  # the `_file` partition value


class Engine(Protocol):
    name: str

    def create(self, name: str, query: str) -> None: ...
    def view(self, name: str, query: str) -> None: ...
    def scan(self, name: str, ref: TableRef | None, columns: Sequence[str], exclude: Sequence[str] = ()) -> None: ...
    def register_rows(self, name: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None: ...
    def columns(self, relation: str) -> list[str]: ...
    def rows(self, query: str) -> list[dict[str, Any]]: ...
    def write(self, query: str, target: str, partition_by: Sequence[str] = ()) -> None: ...
    def read_landing(self, name: str, files: Sequence[RawFile]) -> None: ...
    def rejected(self, name: str) -> str | None: ...
    def close(self) -> None: ...


def _lower_unique(names: Sequence[str], where: str) -> list[str]:
    lowered = [n.lower() for n in names]
    clashes = sorted({n for n in lowered if lowered.count(n) > 1})
    if clashes:
        raise LandingError(
            f"{where} has columns whose names differ only by case or repeat: {clashes}; "
            "column names are case-insensitive in the landing contract"
        )
    return lowered


# -- DuckDB ----------------------------------------------------------------------------------------

class DuckEngine:
    """One in-process DuckDB database (in memory, spilling to `temp_dir`)."""

    name = "duckdb"

    def __init__(self, *, memory_limit: str | None = None, threads: int | None = None,
                 temp_dir: str | Path | None = None) -> None:
        import duckdb

        self._temp = Path(temp_dir) if temp_dir else Path(tempfile.mkdtemp(prefix="rfmlake-duckdb-"))
        self._temp.mkdir(parents=True, exist_ok=True)
        self.con: duckdb.DuckDBPyConnection = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        # DuckDB spills joins, sorts and windows to temp_dir beyond this (settings.duckdb_memory_limit).
        limit = memory_limit or os.environ.get("RFMLAKE_DUCKDB_MEMORY") or "3GB"
        self.con.execute(f"SET memory_limit = {lit(limit)}")
        self.con.execute(f"SET temp_directory = {lit(str(self._temp))}")
        self.con.execute("SET preserve_insertion_order = false")  # lets big COPYs stream in bounded memory
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self._scan_id = 0
        self._rejects: dict[str, list[str]] = {}

    def execute(self, query: str) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(query)
        except Exception as exc:  # noqa: BLE001 - duckdb raises many error types
            raise _failed(query, exc) from exc

    def create(self, name: str, query: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS {query}")

    def view(self, name: str, query: str) -> None:
        self.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {query}")

    def scan(self, name: str, ref: TableRef | None, columns: Sequence[str], exclude: Sequence[str] = ()) -> None:
        """A view over a lake table's current version with exactly `columns` (missing ones null,
        text); a table that does not exist yet reads as no rows."""
        from rfmlake.lake.tables import parquet_scan

        if ref is None:
            select = ", ".join(f"CAST(NULL AS VARCHAR) AS {ident(c)}" for c in columns)
            self.view(name, f"SELECT {select} WHERE false")
            return
        present = set(self.columns_of(parquet_scan(ref)))
        select = ", ".join(ident(c) if c in present else f"CAST(NULL AS VARCHAR) AS {ident(c)}"
                           for c in columns if c not in exclude)
        self.view(name, f"SELECT {select} FROM {parquet_scan(ref)}")

    def register_rows(self, name: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
        import pyarrow as pa

        arrow = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "DATE": pa.date32(), "BOOLEAN": pa.bool_()}
        schema = pa.schema([(c, arrow[t]) for c, t in columns.items()])
        table = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows], schema=schema)
        self.con.register(f"__{name}_arrow", table)
        self.create(name, f"SELECT * FROM {ident(f'__{name}_arrow')}")
        self.con.unregister(f"__{name}_arrow")

    def columns_of(self, relation_sql: str) -> list[str]:
        return [r[0] for r in self.execute(f"DESCRIBE SELECT * FROM {relation_sql}").fetchall()]

    def columns(self, relation: str) -> list[str]:
        return self.columns_of(ident(relation))

    def rows(self, query: str) -> list[dict[str, Any]]:
        from rfmlake.lake.duck import fetch  # DuckDB only where this engine runs (not on Glue)

        try:
            relation = fetch(self.con, query)  # read whole, not streamed
            return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
        except Exception as exc:  # noqa: BLE001 - duckdb raises many error types
            raise _failed(query, exc) from exc

    def write(self, query: str, target: str, partition_by: Sequence[str] = ()) -> None:
        """COPY the query's rows to `target`: a version folder (Parquet files below it, partitioned
        hive-style by `partition_by`)."""
        Path(target).mkdir(parents=True, exist_ok=True)
        if partition_by:
            options = (f"FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({', '.join(ident(c) for c in partition_by)}), "
                       "OVERWRITE_OR_IGNORE true, FILENAME_PATTERN 'part-{uuid}'")
            self.execute(f"COPY ({query}) TO {lit(target)} ({options})")
        else:
            self.execute(f"COPY ({query}) TO {lit(str(Path(target) / 'part-00000.parquet'))} "
                         "(FORMAT parquet, COMPRESSION zstd)")

    # -- landing files ----------------------------------------------------------------------------
    def _lines(self, file: LandingFile, column: str) -> str:
        return (f"read_csv({lit(file.uri)}, columns = {{{lit(column)}: 'VARCHAR'}}, header = false, "
                f"auto_detect = false, delim = {lit(_LINE_DELIMITER)}, quote = '', escape = '', strict_mode = false, "
                f"max_line_size = {_max_line_size(file)})")

    def _json_lines(self, file: LandingFile) -> str:
        return f"SELECT value FROM {self._lines(file, 'value')} WHERE trim(value) <> ''"

    def read_landing(self, name: str, files: Sequence[RawFile]) -> None:
        """A view `name` of every row of `files` as text: the files' own columns (lower case),
        `_corrupt_record` (the raw text of a record that could not be read as a row, its columns
        null), `_source_file`, `_load_date`, `_file`. Columns a file lacks are null. CSV records
        that cannot be read come from `rejected(name)`, once the view has been read."""
        self._rejects[name] = []
        parts = [self._read_one(raw, name) for raw in files]
        self.view(name, " UNION ALL BY NAME ".join(f"SELECT * FROM ({p})" for p in parts))

    def _clean_json_keys(self, file: LandingFile) -> list[str] | None:
        """The keys of a JSON Lines file whose every line is a JSON object (no blank line, no key
        repeated in another case): DuckDB's JSON reader then reads it in one fast pass, with the same
        text values the line-by-line path gives. None for any other file."""
        import duckdb

        from rfmlake.lake.duck import fetch

        objects = f"read_ndjson_objects({lit(file.uri)})"
        try:
            lines = self.execute(f"SELECT count(*) FROM {self._lines(file, 'value')}").fetchone()[0]  # type: ignore[index]
            rows, non_objects = self.con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE json_type(json) <> 'OBJECT') FROM {objects}").fetchone()  # type: ignore[misc]
            if rows != lines or non_objects:
                return None
            keys = sorted(k for (k,) in fetch(self.con, f"SELECT DISTINCT unnest(json_keys(json)) FROM {objects}")
                          .fetchall())
        except duckdb.Error:  # a line that is not JSON
            return None
        return keys if len({k.lower() for k in keys}) == len(keys) else None

    def rejected(self, name: str) -> str | None:
        """The CSV records of `read_landing(name)` DuckDB could not read as rows, as rows with only
        `_corrupt_record` and lineage; valid once the view has been read (the scan fills them)."""
        parts = self._rejects.pop(name, [])
        if not parts:
            return None
        self.view(f"{name}_rejected", " UNION ALL ".join(parts))
        return f"{name}_rejected"

    def _read_one(self, raw: RawFile, name: str) -> str:
        file = raw.file
        lineage = (f"{lit(file.relative_path)} AS _source_file, {lit(raw.load_date)} AS _load_date, "
                   f"{lit(raw.file_key)} AS _file")
        if file.format == "csv":
            from rfmlake.ingest.bronze import csv_header

            header = _lower_unique(csv_header(file), f"landing file {file.relative_path}")
            self._scan_id += 1
            scan = f"rfmlake_scan_{self._scan_id}"
            columns = ", ".join(f"{lit(n)}: 'VARCHAR'" for n in header)  # positional: the file's own header
            encoding = f", encoding = {lit(raw_encoding(file))}"
            read = (f"read_csv({lit(file.uri)}, columns = {{{columns}}}, header = true, auto_detect = false, "
                    "delim = ',', quote = '\"', escape = '\"', strict_mode = true, null_padding = false, "
                    f"store_rejects = true, rejects_scan = {lit(scan + '_s')}, rejects_table = {lit(scan + '_r')}, "
                    f"max_line_size = {_max_line_size(file)}{encoding})")
            rows = ", ".join(ident(n) for n in header)
            # The scan fills its own rejects table as it runs; `rejected` reads it afterwards.
            # One row per rejected record: DuckDB reports a line once per error in it.
            self._rejects[name].append(f"SELECT rtrim(min(csv_line), chr(10) || chr(13)) AS {CORRUPT_COLUMN}, "
                                       f"{lineage} FROM {ident(scan + '_r')} GROUP BY scan_id, file_id, line")
            return f"SELECT {rows}, CAST(NULL AS VARCHAR) AS {CORRUPT_COLUMN}, {lineage} FROM {read}"
        if file.format == "json":
            fast = self._clean_json_keys(file)
            if fast is not None:
                columns = ", ".join(f"{lit(k)}: 'VARCHAR'" for k in fast)
                values = ", ".join(f"{ident(k)} AS {ident(k.lower())}" for k in fast)
                values = f"{values}, " if values else ""
                return (f"SELECT {values}CAST(NULL AS VARCHAR) AS {CORRUPT_COLUMN}, {lineage} FROM "
                        f"read_json({lit(file.uri)}, format = 'newline_delimited', records = true, "
                        f"columns = {{{columns}}})")
            # A file with a line that is not a JSON object: line by line. Each line is parsed twice:
            # once for its type (a corrupt record), once for every key at a time (one path list).
            keys = [r["k"] for r in self.rows(
                f"SELECT DISTINCT unnest(try(json_keys(value))) AS k FROM ({self._json_lines(file)})")]
            keys = sorted(k for k in keys if k is not None)
            by_lower: dict[str, list[int]] = {}
            for index, key in enumerate(keys, 1):
                by_lower.setdefault(key.lower(), []).append(index)
            paths = "[" + ", ".join(lit(_json_path(k)) for k in keys) + "]"
            values = ", ".join(
                "coalesce(" + ", ".join(f"v[{i}]" for i in indexes) + f") AS {ident(name)}"
                for name, indexes in by_lower.items()
            )
            values = f"{values}, " if values else ""
            extract = f"json_extract_string(value, {paths})" if keys else "CAST(NULL AS VARCHAR[])"
            objects = f"SELECT value, try(json_type(value)) = 'OBJECT' AS is_object FROM ({self._json_lines(file)})"
            return (f"SELECT {values}CASE WHEN NOT coalesce(is_object, false) THEN value END AS {CORRUPT_COLUMN}, "
                    f"{lineage} FROM (SELECT value, is_object, CASE WHEN is_object THEN {extract} END AS v "
                    f"FROM ({objects}))")
        if file.format == "parquet":
            described = self.execute(f"DESCRIBE SELECT * FROM read_parquet({lit(file.uri)})").fetchall()
            _lower_unique([n for n, *_ in described], f"landing file {file.relative_path}")
            values = ", ".join(f"{_parquet_text(n, t)} AS {ident(n.lower())}" for n, t, *_ in described)
            return (f"SELECT {values}, CAST(NULL AS VARCHAR) AS {CORRUPT_COLUMN}, {lineage} "
                    f"FROM read_parquet({lit(file.uri)})")
        return (f"SELECT coalesce(line, '') AS line, CAST(NULL AS VARCHAR) AS {CORRUPT_COLUMN}, {lineage} "
                f"FROM {self._lines(file, 'line')}")

    def close(self) -> None:
        import shutil

        self.con.close()
        shutil.rmtree(self._temp, ignore_errors=True)


def _nanosecond_columns(file: LandingFile) -> dict[str, bool]:
    """The file's top-level nanosecond timestamp columns, and whether each has a time zone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rfmlake.lake.storage import Storage

    with Storage.for_location(file.uri).open_input(file.uri) as handle:
        schema = pq.read_schema(handle)
    return {f.name: f.type.tz is not None for f in schema if pa.types.is_timestamp(f.type) and f.type.unit == "ns"}


MAX_LINE_BYTES = 16 * 1024 * 1024


def _max_line_size(file: LandingFile) -> int:
    """Lines up to MAX_LINE_BYTES are read (DuckDB's 2 MB default failed the run on a longer JSON or
    log line, and quarantined a longer CSV record that Spark reads). Not the file's size: DuckDB
    reads in buffers of 16 lines' maximum, so a 235 MB file asked for 3.5 GB at once."""
    return min(max(2 * 1024 * 1024, file.size + 1), MAX_LINE_BYTES)


def raw_encoding(file: LandingFile) -> str:
    """The encoding a text landing file is decoded with (validated before: rfmlake.ingest.bronze)."""
    return "latin-1" if file.encoding == "latin-1" else file.encoding


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _parquet_text(name: str, type_name: str) -> str:
    """A Parquet column as the text a CSV export of it would hold: timestamps as ISO 8601 (UTC 'Z'
    when the type is zoned), nested values as JSON, the rest cast."""
    column = ident(name)
    upper = type_name.upper()
    if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%fZ')"
    if upper.startswith("TIMESTAMP"):
        return f"strftime({column}, '%Y-%m-%dT%H:%M:%S.%f')"
    if upper.startswith(("STRUCT", "MAP")) or upper.endswith("[]"):
        return f"CAST(to_json({column}) AS VARCHAR)"
    if upper == "VARCHAR":
        return column
    return f"CAST({column} AS VARCHAR)"


# -- Spark -----------------------------------------------------------------------------------------

def to_spark(query: str) -> str:
    """DuckDB SQL -> Spark SQL. One difference sqlglot leaves: Spark's to_json drops null fields,
    DuckDB's keeps them (the quarantine's raw record shows every column on both)."""
    import sqlglot
    from sqlglot import exp

    def keep_nulls(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "to_json" and len(node.expressions) == 1:
            options = exp.Anonymous(this="map", expressions=[exp.Literal.string("ignoreNullFields"),
                                                             exp.Literal.string("false")])
            return exp.Anonymous(this="to_json", expressions=[node.expressions[0], options])
        return node

    return sqlglot.parse_one(query, read="duckdb").transform(keep_nulls).sql(dialect="spark")


class SparkEngine:
    """A SparkSession (local[*], or Glue's), running the same SQL transpiled; intermediate
    relations are temp views, materialised with a local checkpoint where they are reused."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _sql(self, query: str) -> DataFrame:
        try:
            return self.spark.sql(to_spark(query))
        except Exception as exc:  # noqa: BLE001 - Spark raises Py4J and analysis errors
            raise PipelineError(f"Spark SQL failed: {str(exc).splitlines()[0]}\nin: {to_spark(query)[:800]}") from exc

    def create(self, name: str, query: str) -> None:
        self._sql(query).localCheckpoint(eager=True).createOrReplaceTempView(name)

    def view(self, name: str, query: str) -> None:
        self._sql(query).createOrReplaceTempView(name)

    def scan(self, name: str, ref: TableRef | None, columns: Sequence[str], exclude: Sequence[str] = ()) -> None:
        from pyspark.sql import functions as F

        wanted = [c for c in columns if c not in exclude]
        paths = [p.uri for p in ref.partitions] if ref is not None and ref.is_partitioned else (
            [ref.uri] if ref is not None else [])
        if not paths:
            self.view(name, "SELECT " + ", ".join(f"CAST(NULL AS VARCHAR) AS {ident(c)}" for c in wanted)
                      + " WHERE false")
            return
        # recursiveFileLookup: the partitions lie under different version folders, which Spark's
        # partition discovery would refuse; partition columns are not needed from a scan.
        df = self.spark.read.option("recursiveFileLookup", "true").option("mergeSchema", "true").parquet(*paths)
        df = df.select(*[F.col(f"`{c}`") if c in df.columns else F.lit(None).cast("string").alias(c) for c in wanted])
        df.createOrReplaceTempView(name)

    def register_rows(self, name: str, columns: dict[str, str], rows: list[tuple[Any, ...]]) -> None:
        types = {"VARCHAR": "string", "BIGINT": "bigint", "DATE": "date", "BOOLEAN": "boolean"}
        schema = ", ".join(f"`{c}` {types[t]}" for c, t in columns.items())
        self.spark.createDataFrame(rows, schema).createOrReplaceTempView(name)

    def columns(self, relation: str) -> list[str]:
        return list(self.spark.table(relation).columns)

    def rows(self, query: str) -> list[dict[str, Any]]:
        return [row.asDict() for row in self._sql(query).collect()]

    def write(self, query: str, target: str, partition_by: Sequence[str] = ()) -> None:
        writer = self._sql(query).write.option("compression", "zstd").mode("append")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.parquet(target)

    def read_landing(self, name: str, files: Sequence[RawFile]) -> None:
        from functools import reduce

        frames = [self._read_one(raw) for raw in files]
        df = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
        df.createOrReplaceTempView(name)

    def rejected(self, name: str) -> str | None:
        return None  # Spark's PERMISSIVE reader keeps unreadable records in the view itself

    def _read_one(self, raw: RawFile) -> DataFrame:
        from pyspark.sql import functions as F
        from pyspark.sql import types as T

        file = raw.file
        if file.format == "csv":
            from rfmlake.ingest.bronze import csv_header

            header = _lower_unique(csv_header(file), f"landing file {file.relative_path}")
            schema = T.StructType([T.StructField(n, T.StringType()) for n in [*header, CORRUPT_COLUMN]])
            # The schema comes from this file's own header, so Spark's positional schema is right;
            # multiLine so a quoted newline stays inside its record.
            df = self.spark.read.csv(file.uri, schema=schema, header=True, mode="PERMISSIVE",
                                     columnNameOfCorruptRecord=CORRUPT_COLUMN, escape='"',
                                     encoding=raw_encoding(file), multiLine=True)
            corrupt = F.col(CORRUPT_COLUMN)
            # A record that could not be read keeps only its text, as on DuckDB.
            df = df.select(*[F.when(corrupt.isNull(), F.col(f"`{n}`")).alias(n.lower()) for n in header],
                           F.regexp_replace(corrupt, "[\\r\\n]+$", "").alias(CORRUPT_COLUMN))
        elif file.format == "json":
            lines = self.spark.read.text(file.uri).where(F.trim("value") != "")
            parsed = lines.select("value", F.from_json("value", "map<string,string>", {"mode": "PERMISSIVE"})
                                  .alias("_m"))
            by_lower: dict[str, list[str]] = {}
            keys = sorted({r["k"] for r in parsed.select(F.explode(F.map_keys("_m")).alias("k")).distinct().collect()})
            for key in keys:
                by_lower.setdefault(key.lower(), []).append(key)
            df = parsed.select(
                *[F.coalesce(*[F.col("_m").getItem(k) for k in variants]).alias(n) for n, variants in by_lower.items()],
                F.when(F.col("_m").isNull(), F.col("value")).alias(CORRUPT_COLUMN),
            )
        elif file.format == "parquet":
            # Dates before 1582 and timestamps before 1900 as written (proleptic Gregorian, as DuckDB
            # and pyarrow read them); Spark's default refused the whole file with a stack trace.
            # Nanosecond timestamps (pandas' default) have no Spark type: read as longs, converted below.
            self.spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
            nanos = _nanosecond_columns(file)
            df = (self.spark.read.option("datetimeRebaseMode", "CORRECTED").option("int96RebaseMode", "CORRECTED")
                  .parquet(file.uri))
            _lower_unique(df.columns, f"landing file {file.relative_path}")
            columns = []
            for field in df.schema.fields:
                column = F.col(f"`{field.name}`")
                if field.name in nanos:
                    micros = F.timestamp_micros(F.expr(f"`{field.name}` div 1000"))
                    value = F.date_format(micros, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS" + ("'Z'" if nanos[field.name] else ""))
                elif isinstance(field.dataType, T.StringType):
                    value = column
                elif isinstance(field.dataType, (T.StructType, T.ArrayType, T.MapType)):
                    value = F.to_json(column)
                elif isinstance(field.dataType, T.TimestampType):
                    value = F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'")
                elif isinstance(field.dataType, T.TimestampNTZType):
                    value = F.date_format(column, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
                else:
                    value = column.cast("string")
                columns.append(value.alias(field.name.lower()))
            df = df.select(*columns, F.lit(None).cast("string").alias(CORRUPT_COLUMN))
        else:
            df = self.spark.read.text(file.uri).select(F.col("value").alias("line"),
                                                       F.lit(None).cast("string").alias(CORRUPT_COLUMN))
        return df.select("*", F.lit(file.relative_path).alias("_source_file"), F.lit(raw.load_date).alias("_load_date"),
                         F.lit(raw.file_key).alias("_file"))

    def close(self) -> None:
        for table in self.spark.catalog.listTables():
            if table.isTemporary:
                self.spark.catalog.dropTempView(table.name)


def engine_for(kind: str, *, spark: SparkSession | None = None, temp_dir: str | Path | None = None) -> Engine:
    if kind == "spark":
        if spark is None:
            from rfmlake.ingest.spark import get_spark

            spark = get_spark("rfmlake")
        return SparkEngine(spark)
    return DuckEngine(temp_dir=temp_dir)
