"""Bronze -> silver job: classify every bronze row, write silver tables, the quarantine and the
reconciliation, check rows in = accepted + quarantined per file, then commit all tables together."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import reduce
from typing import TYPE_CHECKING, Any

from rfmlake.contract.entities import ENTITIES, QuarantineReason
from rfmlake.errors import PipelineError
from rfmlake.ingest import access_logs, aws_guidance, conform
from rfmlake.ingest.parsing import REASON
from rfmlake.ingest.pii import resolve_pii_key

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from rfmlake.pipeline.context import RunContext

log = logging.getLogger(__name__)

SILVER_OUTPUTS: tuple[str, ...] = (
    "customers", "orders", "order_items", "products", "events", "access_logs", "currency_rates",
)
RECONCILIATION_TABLE = "ingest_reconciliation"
QUARANTINE_TABLE = "quarantine"


@dataclass(frozen=True)
class ReconciliationRow:
    entity: str
    source_file: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_accepted + self.rows_quarantined


@dataclass
class SilverReport:
    reconciliation: list[ReconciliationRow] = field(default_factory=list)
    quarantine_counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (entity, reason) -> rows
    table_rows: dict[str, int] = field(default_factory=dict)  # silver table -> rows

    @property
    def rows_in(self) -> int:
        return sum(r.rows_in for r in self.reconciliation)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows_quarantined for r in self.reconciliation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows_in": self.rows_in,
            "rows_accepted": sum(r.rows_accepted for r in self.reconciliation),
            "rows_quarantined": self.rows_quarantined,
            "tables": dict(self.table_rows),
            "quarantine": {f"{e}/{r}": n for (e, r), n in sorted(self.quarantine_counts.items())},
            "reconciliation": [r.__dict__ for r in self.reconciliation],
        }


def _read_bronze(spark: SparkSession, ctx: RunContext) -> dict[str, DataFrame]:
    frames: dict[str, DataFrame] = {}
    for name in sorted(ENTITIES):
        ref = ctx.lake.current("bronze", name)
        if ref is None:
            raise PipelineError(
                f"bronze.{name} does not exist in the lake at {ctx.lake.location}; run the ingest_bronze stage first"
            )
        frames[name] = spark.read.parquet(ref.uri)
    return frames


def _currency_rates(spark: SparkSession, ctx: RunContext) -> DataFrame:
    from pyspark.sql import types as T

    schema = T.StructType([
        T.StructField("currency", T.StringType(), False),
        T.StructField("rate_to_reporting", T.DoubleType(), False),
        T.StructField("reporting_currency", T.StringType(), False),
        T.StructField("_source_file", T.StringType(), True),
        T.StructField("_row_hash", T.StringType(), True),
    ])
    rows = [(code, float(rate), ctx.settings.reporting_currency, "config:currency_rates", None)
            for code, rate in sorted(ctx.settings.currency_rates.items())]
    return spark.createDataFrame(rows, schema)


def reconcile(bronze: dict[str, DataFrame], classified: dict[str, DataFrame]) -> list[ReconciliationRow]:
    """Count rows in (from bronze) and accepted / quarantined (from the classification) per file in
    two aggregations, and raise if any file does not balance."""
    from pyspark.sql import functions as F

    rows_in = reduce(_union, [
        df.select(F.lit(name).alias("entity"), F.col("_source_file").alias("source_file"))
        for name, df in bronze.items()
    ]).groupBy("entity", "source_file").agg(F.count(F.lit(1)).alias("rows_in"))
    outcome = reduce(_union, [
        df.select(F.lit(name).alias("entity"), F.col("_source_file").alias("source_file"),
                  F.col(REASON).isNull().cast("long").alias("ok"))
        for name, df in classified.items()
    ]).groupBy("entity", "source_file").agg(
        F.sum("ok").alias("rows_accepted"), F.sum(1 - F.col("ok")).alias("rows_quarantined")
    )
    joined = rows_in.join(outcome, ["entity", "source_file"], "full_outer").orderBy("entity", "source_file")
    result = [
        ReconciliationRow(r["entity"], r["source_file"], int(r["rows_in"] or 0), int(r["rows_accepted"] or 0),
                          int(r["rows_quarantined"] or 0))
        for r in joined.collect()
    ]
    unbalanced = [r for r in result if not r.balanced]
    if unbalanced:
        lines = "; ".join(
            f"{r.entity} {r.source_file}: in={r.rows_in} accepted={r.rows_accepted} quarantined={r.rows_quarantined}"
            for r in unbalanced
        )
        raise PipelineError(f"ingest reconciliation failed (rows in != accepted + quarantined): {lines}")
    return result


def _union(a: DataFrame, b: DataFrame) -> DataFrame:
    return a.unionByName(b)


def _materialize(df: DataFrame) -> DataFrame:
    return df.localCheckpoint(eager=True)


def _suppressed_rows(spark: SparkSession, ctx: RunContext) -> DataFrame | None:
    """bronze.suppressed_rows (rows of erased customers left out of bronze), None when empty."""
    from rfmlake.ingest.suppression import SUPPRESSED_TABLE

    ref = ctx.lake.current("bronze", SUPPRESSED_TABLE)
    if ref is None or ctx.lake.count_rows(ref) == 0:
        return None
    return spark.read.parquet(ref.uri)


def _with_suppressed(bronze: dict[str, DataFrame], classified: dict[str, DataFrame],
                     suppressed: DataFrame) -> tuple[dict[str, DataFrame], dict[str, DataFrame], DataFrame]:
    """Rows of erased customers count as landed and as quarantined (reason erased_customer) in the
    reconciliation; their quarantine rows keep lineage only, never raw values."""
    from pyspark.sql import functions as F

    reason = F.lit(QuarantineReason.ERASED_CUSTOMER.value)
    rows_in = {
        name: df.select("_source_file").unionByName(suppressed.where(F.col("entity") == name).select("_source_file"))
        for name, df in bronze.items()
    }
    outcome = {
        name: df.select("_source_file", REASON).unionByName(
            suppressed.where(F.col("entity") == name).select("_source_file", reason.alias(REASON))
        )
        for name, df in classified.items()
    }
    quarantine = suppressed.select(
        F.col("entity"),
        F.col("_source_file").alias("source_file"),
        reason.alias("reason"),
        F.lit(None).cast("string").alias("detail"),
        F.lit(None).cast("string").alias("raw"),
        F.col("_row_hash"),
        F.col("_loaded_at").cast("timestamp").alias("_loaded_at"),
    )
    return rows_in, outcome, quarantine


def conform_silver(spark: SparkSession, ctx: RunContext) -> SilverReport:
    """Bronze -> silver for every entity. Writes silver.<table>, silver.ingest_reconciliation and
    bronze.quarantine (raw values are PII, so it stays in bronze), committed only after all are
    written."""
    from pyspark.sql import functions as F

    key = resolve_pii_key(ctx.lake, ctx.settings)
    bronze = _read_bronze(spark, ctx)
    settings = ctx.settings

    classified: dict[str, DataFrame] = {
        "customers": conform.classify_customers(bronze["customers"], key),
        "orders": conform.classify_orders(bronze["orders"], settings),
        "products": conform.classify_products(bronze["products"], settings),
        "events": conform.classify_events(bronze["events"], key),
        "access_logs": access_logs.classify_access_logs(bronze["access_logs"], key),
        "aws_rfm_guidance": aws_guidance.classify_guidance(bronze["aws_rfm_guidance"]),
    }
    # Reused by the silver write, the quarantine and the reconciliation: compute each once. A local
    # checkpoint (not persist) also cuts the lineage, so later plans stay small; Spark's cache lookup
    # over these wide expression trees costs more than the tiny tables themselves.
    for name in ("customers", "orders", "aws_rfm_guidance"):
        classified[name] = _materialize(classified[name])

    guidance = classified["aws_rfm_guidance"]
    guidance_items = aws_guidance.guidance_order_items(guidance)
    orders = conform.accepted(classified["orders"], "orders").unionByName(
        aws_guidance.guidance_orders(guidance_items, settings)
    )
    classified["order_items"] = conform.classify_order_items(
        bronze["order_items"], orders.select("order_id")
    )
    for name in ("order_items", "products", "events", "access_logs"):
        classified[name] = _materialize(classified[name])

    crm_customers = conform.accepted(classified["customers"], "customers")
    silver: dict[str, DataFrame] = {
        "customers": crm_customers.unionByName(
            aws_guidance.guidance_customers(guidance, key, crm_customers.select("customer_id"))
        ),
        "orders": orders,
        "order_items": conform.accepted(classified["order_items"], "order_items").unionByName(
            guidance_items.drop("_customer_id", "_ts")
        ),
        "products": conform.accepted(classified["products"], "products"),
        "events": conform.accepted(classified["events"], "events").unionByName(
            aws_guidance.guidance_events(guidance)
        ),
        "access_logs": conform.accepted(classified["access_logs"], "access_logs"),
        "currency_rates": _currency_rates(spark, ctx),
    }
    quarantine = reduce(_union, [
        conform.quarantined(classified[name], name, conform.raw_columns(bronze[name])) for name in sorted(classified)
    ])

    suppressed = _suppressed_rows(spark, ctx)
    if suppressed is None:
        reconciliation = reconcile(bronze, classified)
    else:
        rows_in, outcome, erased_quarantine = _with_suppressed(bronze, classified, suppressed)
        reconciliation = reconcile(rows_in, outcome)
        quarantine = quarantine.unionByName(erased_quarantine)
    recon_df = spark.createDataFrame(
        [(r.entity, r.source_file, r.rows_in, r.rows_accepted, r.rows_quarantined) for r in reconciliation],
        "entity string, source_file string, rows_in bigint, rows_accepted bigint, rows_quarantined bigint",
    ).withColumn("_loaded_at", F.lit(ctx.started_at).cast("timestamp"))

    outputs: list[tuple[str, str, DataFrame]] = [
        *[("silver", name, silver[name]) for name in SILVER_OUTPUTS],
        ("silver", RECONCILIATION_TABLE, recon_df.coalesce(1)),
        ("bronze", QUARANTINE_TABLE, quarantine),
    ]
    written: list[tuple[str, str, str]] = []
    for zone, name, df in outputs:
        version_dir = ctx.lake.new_version(zone, name)
        df.write.parquet(str(version_dir), compression="zstd")
        written.append((zone, name, version_dir))

    report = SilverReport(reconciliation=reconciliation)
    for zone, name, version_dir in written:
        if zone == "silver" and name in SILVER_OUTPUTS:
            report.table_rows[name] = ctx.lake.count_rows(version_dir)
        if zone == "bronze":
            for row in spark.read.parquet(str(version_dir)).groupBy("entity", "reason").count().collect():
                report.quarantine_counts[(row["entity"], row["reason"])] = int(row["count"])
    # All tables are written; only now do they become visible, one atomic pointer swap each.
    for zone, name, version_dir in written:
        ctx.lake.commit(zone, name, version_dir)
    log.info("silver: %s rows in, %s quarantined", report.rows_in, report.rows_quarantined)
    return report
