"""Landing -> bronze: every landed row as strings, one bronze table per entity, plus lineage.

Bronze is a full refresh from all landing files on each run: landing is the immutable source of
truth, so a re-run rebuilds the same bronze instead of appending duplicates.
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING

from rfmlake.contract.entities import ENTITIES
from rfmlake.contract.landing import LandingFile
from rfmlake.errors import LandingError
from rfmlake.lake.storage import Storage

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from rfmlake.lake import Lake
    from rfmlake.pipeline.context import RunContext

log = logging.getLogger(__name__)

CORRUPT_COLUMN = "_corrupt_record"
LOG_LINE_COLUMN = "line"  # the one raw column of access_logs
BRONZE_LINEAGE: tuple[str, ...] = ("_source_file", "_loaded_at", "_row_hash")
_HASH_SEPARATOR = "\x1f"  # ASCII unit separator: does not occur in real field values
_HEADER_READ_SIZE = 64 * 1024  # one read covers any real header (one ranged GET on S3)


@dataclass(frozen=True)
class BronzeResult:
    entity: str
    table: str  # qualified name, e.g. bronze.orders
    files: int
    rows: int
    rows_by_file: dict[str, int] = field(default_factory=dict)
    suppressed: int = 0  # rows of erased customers left out (bronze.suppressed_rows)


def contract_columns(entity_name: str) -> tuple[str, ...]:
    """The raw columns of an entity in canonical (contract) order, lower-cased."""
    if entity_name == "access_logs":
        return (LOG_LINE_COLUMN,)
    return tuple(c.lower() for c in ENTITIES[entity_name].column_names)


def _csv_header(landing_file: LandingFile, storage: Storage | None = None) -> list[str]:
    """The header row, read through storage (a local file or an S3 object: a ranged read of its
    first bytes, not the whole object)."""
    storage = storage or Storage.for_location(landing_file.uri)
    try:
        with storage.open_input(landing_file.uri) as raw, io.TextIOWrapper(
            io.BufferedReader(raw, buffer_size=_HEADER_READ_SIZE), encoding="utf-8-sig", newline=""
        ) as handle:
            header = next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise LandingError(f"landing file {landing_file.relative_path} is not UTF-8 text") from None
    except OSError as exc:
        raise LandingError(f"landing file {landing_file.relative_path} cannot be read: {exc}") from None
    return [name.strip() or f"_c{i}" for i, name in enumerate(header)]


def _lower_unique(names: list[str], where: str) -> list[str]:
    lowered = [n.lower() for n in names]
    clashes = sorted({n for n in lowered if lowered.count(n) > 1})
    if clashes:
        raise LandingError(
            f"{where} has columns whose names differ only by case or repeat: {clashes}; "
            "column names are case-insensitive in the landing contract"
        )
    return lowered


def _as_string(df: DataFrame) -> DataFrame:
    """Every column as string: nested JSON/Parquet values as JSON text, the rest cast."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    columns: list[Column] = []
    for f in df.schema.fields:
        if isinstance(f.dataType, T.StringType):
            columns.append(F.col(f"`{f.name}`"))
        elif isinstance(f.dataType, (T.StructType, T.ArrayType, T.MapType)):
            columns.append(F.to_json(F.col(f"`{f.name}`")).alias(f.name))
        else:
            columns.append(F.col(f"`{f.name}`").cast("string").alias(f.name))
    return df.select(*columns)


def _read_file(spark: SparkSession, landing_file: LandingFile, storage: Storage | None = None) -> DataFrame:
    from pyspark.sql import types as T

    path = landing_file.uri  # a local path, or s3:// (read natively by Glue's Spark)
    if landing_file.format == "csv":
        names = _lower_unique(_csv_header(landing_file, storage), f"landing file {landing_file.relative_path}")
        schema = T.StructType([T.StructField(n, T.StringType()) for n in [*names, CORRUPT_COLUMN]])
        # The schema comes from this file's own header, so Spark's positional schema is right.
        return spark.read.csv(
            path, schema=schema, header=True, mode="PERMISSIVE", columnNameOfCorruptRecord=CORRUPT_COLUMN,
            escape='"', encoding="UTF-8",
        )
    if landing_file.format == "parquet":
        df = spark.read.parquet(path)
        _lower_unique(df.columns, f"landing file {landing_file.relative_path}")
        return df
    return spark.read.text(path).withColumnRenamed("value", LOG_LINE_COLUMN)


def _read_json(spark: SparkSession, files: list[LandingFile]) -> DataFrame | None:
    """JSON Lines of one entity as strings. Each line is parsed into a map, so keys differing only
    by case ("Customer_ID", "customer_id") land in one lower-case column (Spark's own JSON reader
    refuses them), every value is kept as text, and a line that is not a JSON object is a
    corrupt record."""
    from pyspark.sql import functions as F

    frames = [
        spark.read.text(f.uri).withColumn("_source_file", F.lit(f.relative_path))
        for f in files
        if f.format == "json" and not f.is_empty
    ]
    if not frames:
        return None
    lines = reduce(lambda a, b: a.unionByName(b), frames).where(F.trim("value") != "")
    parsed = lines.select(
        "value", "_source_file", F.from_json("value", "map<string,string>", {"mode": "PERMISSIVE"}).alias("_m")
    ).persist()
    keys = sorted({r["k"] for r in parsed.select(F.explode(F.map_keys("_m")).alias("k")).distinct().collect()})
    by_lower: dict[str, list[str]] = {}
    for k in keys:
        by_lower.setdefault(k.lower(), []).append(k)
    return parsed.select(
        *[F.coalesce(*[F.col("_m").getItem(k) for k in variants]).alias(name) for name, variants in by_lower.items()],
        F.when(F.col("_m").isNull(), F.col("value")).alias(CORRUPT_COLUMN),
        "_source_file",
    )


def row_hash_column(raw_columns: tuple[str, ...], extra_columns: list[str]) -> Column:
    """SHA-256 over the raw values in canonical order: contract columns (null and '' alike, as CSV
    and JSON disagree on them), then non-empty extra columns as name=value sorted by name, then the
    corrupt record text. The same row gives the same hash whether it came as CSV, JSON or Parquet."""
    from pyspark.sql import functions as F

    parts: list[Column] = [F.coalesce(F.col(f"`{c}`"), F.lit("")) for c in raw_columns]
    for name in sorted(extra_columns):
        value = F.col(f"`{name}`")
        parts.append(F.when(value.isNotNull() & (value != ""), F.concat(F.lit(f"{name}="), value)))
    parts.append(F.col(CORRUPT_COLUMN))
    return F.sha2(F.concat_ws(_HASH_SEPARATOR, *parts), 256)


def bronze_frame(spark: SparkSession, entity_name: str, files: list[LandingFile], loaded_at: object) -> DataFrame:
    """All rows of one entity's files as one DataFrame of strings with lineage columns."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    raw_columns = contract_columns(entity_name)
    storage = Storage.for_location(files[0].uri) if files else None  # one landing, one filesystem
    frames: list[DataFrame] = []
    json_frame = _read_json(spark, files)
    if json_frame is not None:
        frames.append(json_frame)
    for landing_file in files:
        if landing_file.is_empty:
            log.info("landing file %s is empty (0 rows)", landing_file.relative_path)
            continue
        if landing_file.format == "json":
            continue
        df = _as_string(_read_file(spark, landing_file, storage))
        df = df.toDF(*[c.lower() for c in df.columns])
        frames.append(df.withColumn("_source_file", F.lit(landing_file.relative_path)))
    if frames:
        df = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    else:
        df = spark.createDataFrame([], T.StructType([T.StructField("_source_file", T.StringType())]))
    for name in (*raw_columns, CORRUPT_COLUMN):
        if name not in df.columns:
            df = df.withColumn(name, F.lit(None).cast("string"))
    extras = sorted(c for c in df.columns if c not in raw_columns and c not in (CORRUPT_COLUMN, "_source_file"))
    return df.select(
        *[F.col(f"`{c}`") for c in (*raw_columns, *extras, CORRUPT_COLUMN, "_source_file")],
        F.lit(loaded_at).cast("timestamp").alias("_loaded_at"),
        row_hash_column(raw_columns, extras).alias("_row_hash"),
    )


def _write_empty(lake: Lake, entity_name: str, version_dir: str) -> None:
    """The bronze table of an entity without rows, in the schema Spark would write."""
    import pyarrow as pa

    names = [*contract_columns(entity_name), CORRUPT_COLUMN, "_source_file"]
    schema = pa.schema(
        [pa.field(n, pa.string()) for n in names]
        + [pa.field("_loaded_at", pa.timestamp("us", tz="UTC")), pa.field("_row_hash", pa.string())]
    )
    lake.write_version(version_dir, schema.empty_table())


def _write_suppressed(spark: SparkSession, lake: Lake, frames: list[DataFrame], version_dir: str) -> int:
    """bronze.suppressed_rows: lineage of the rows of erased customers (no raw values); always
    written, so a run without erasures replaces an older list."""
    import pyarrow as pa

    from rfmlake.ingest.suppression import SUPPRESSED_COLUMNS

    if frames:
        reduce(lambda a, b: a.unionByName(b), frames).coalesce(1).write.parquet(str(version_dir), compression="zstd")
        return int(spark.read.parquet(str(version_dir)).count())
    schema = pa.schema([pa.field(n, pa.timestamp("us", tz="UTC") if n == "_loaded_at" else pa.string())
                        for n in SUPPRESSED_COLUMNS])
    lake.write_version(version_dir, schema.empty_table())
    return 0


def load_bronze(spark: SparkSession, ctx: RunContext, files: list[LandingFile]) -> dict[str, BronzeResult]:
    """Write one bronze table per contract entity (empty when nothing landed for it), then commit
    them all, so a crash mid-stage leaves the previous bronze versions visible. Rows of customers on
    the erasure suppression list are left out (rfmlake.ingest.suppression)."""
    from rfmlake.ingest.pii import resolve_pii_key
    from rfmlake.ingest.suppression import SUPPRESSED_TABLE, load_suppression, split_suppressed, suppressed_order_ids

    unknown = sorted({f.entity for f in files} - set(ENTITIES))
    if unknown:
        raise LandingError(f"unknown entities {unknown}; known: {sorted(ENTITIES)}")
    suppression = load_suppression(ctx.lake)
    key = None if suppression.empty else resolve_pii_key(ctx.lake, ctx.settings)
    order_ids: list[str] = []
    order_files = [f for f in files if f.entity == "orders"]
    if key is not None and not all(f.is_empty for f in order_files):
        order_ids = suppressed_order_ids(bronze_frame(spark, "orders", order_files, ctx.started_at), key, suppression)
    erased_frames: list[DataFrame] = []
    written: dict[str, str] = {}
    for entity_name in sorted(ENTITIES):
        entity_files = [f for f in files if f.entity == entity_name]
        version_dir = ctx.lake.new_version("bronze", entity_name)
        if all(f.is_empty for f in entity_files):
            _write_empty(ctx.lake, entity_name, version_dir)  # no Spark job for an entity with nothing landed
        else:
            df = bronze_frame(spark, entity_name, entity_files, ctx.started_at)
            if key is not None:
                df, erased = split_suppressed(entity_name, df, key, suppression, order_ids)
                erased_frames.append(erased)
            df.write.parquet(str(version_dir), compression="zstd")
        written[entity_name] = version_dir
    suppressed_dir = ctx.lake.new_version("bronze", SUPPRESSED_TABLE)
    suppressed_total = _write_suppressed(spark, ctx.lake, erased_frames, suppressed_dir)
    suppressed_by_entity: dict[str, int] = {}
    if suppressed_total:
        suppressed_by_entity = {r["entity"]: int(r["count"]) for r in
                                spark.read.parquet(str(suppressed_dir)).groupBy("entity").count().collect()}

    results: dict[str, BronzeResult] = {}
    for entity_name, version_dir in written.items():
        entity_files = [f for f in files if f.entity == entity_name]
        counts: dict[str, int] = {}
        if not all(f.is_empty for f in entity_files):
            counts = {
                row["_source_file"]: int(row["count"])
                for row in spark.read.parquet(str(version_dir)).groupBy("_source_file").count().collect()
            }
        for f in entity_files:
            counts.setdefault(f.relative_path, 0)
        results[entity_name] = BronzeResult(
            entity=entity_name,
            table=f"bronze.{entity_name}",
            files=len(entity_files),
            rows=sum(counts.values()),
            rows_by_file=dict(sorted(counts.items())),
            suppressed=suppressed_by_entity.get(entity_name, 0),
        )
    for entity_name, version_dir in written.items():
        ctx.lake.commit("bronze", entity_name, version_dir)
        log.info("bronze.%s: %d rows from %d files", entity_name, results[entity_name].rows,
                 results[entity_name].files)
    ctx.lake.commit("bronze", SUPPRESSED_TABLE, suppressed_dir)
    if suppressed_total:
        log.info("bronze: %d rows of erased customers left out (bronze.%s)", suppressed_total, SUPPRESSED_TABLE)
    return results
