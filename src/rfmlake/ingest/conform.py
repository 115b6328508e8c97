"""Bronze -> silver for the contract entities (customers, orders, order_items, products, events).

Each `classify_*` is a pure DataFrame -> DataFrame transform: it keeps every bronze row, adds the
typed values (columns `v_<silver column>`) and `_reason`/`_detail` (null when accepted). Reasons are
tried in parsing.REASON_ORDER; within a reason, in the order the checks are listed.
`accepted` and `quarantined` then split a classified frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rfmlake.contract.entities import LINEAGE_COLUMNS, ORDER_STATUSES, SILVER_TABLES, QuarantineReason
from rfmlake.ingest.bronze import BRONZE_LINEAGE, CORRUPT_COLUMN
from rfmlake.ingest.parsing import (
    DETAIL,
    REASON,
    Check,
    clean,
    col,
    date_check,
    deduplicate,
    is_blank,
    malformed_check,
    missing_key_checks,
    parse_bool,
    parse_decimal,
    parse_int,
    parse_timestamp,
    shown,
    type_check,
    with_checks,
)
from rfmlake.ingest.pii import token_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from rfmlake.settings import Settings

V = "__v_"  # prefix of the typed value columns in a classified frame


def silver_columns(table: str) -> list[str]:
    return [name for name, _, _ in SILVER_TABLES[table]] + [name for name, _, _ in LINEAGE_COLUMNS]


def silver_types(table: str) -> dict[str, str]:
    return {name: type_name for name, type_name, _ in (*SILVER_TABLES[table], *LINEAGE_COLUMNS)}


def _negative(name: str, value: Column, reason: QuarantineReason, strict: bool = False) -> Check:
    from pyspark.sql import functions as F

    failed = (value <= 0) if strict else (value < 0)
    return Check(reason, failed, F.concat(F.lit(f"{name}="), value.cast("string")))


def _currency(settings: Settings) -> tuple[Column, Check]:
    from pyspark.sql import functions as F

    value = F.coalesce(F.upper(clean(col("currency"))), F.lit(settings.default_currency))
    known = sorted(settings.currency_rates)
    check = Check(
        QuarantineReason.UNKNOWN_CURRENCY,
        ~value.isin(*known),
        F.concat(shown("currency", col("currency")), F.lit(f" is not one of {', '.join(known)}")),
    )
    return value, check


def accepted(classified: DataFrame, table: str) -> DataFrame:
    """The silver rows: typed columns renamed to the silver schema, exactly its types and order."""
    from pyspark.sql import functions as F

    types = silver_types(table)
    lineage = {name for name, _, _ in LINEAGE_COLUMNS}
    return classified.where(F.col(REASON).isNull()).select(
        *[
            (F.col(name) if name in lineage else F.col(V + name)).cast(types[name]).alias(name)
            for name in silver_columns(table)
        ]
    )


def quarantined(classified: DataFrame, entity_name: str, raw_names: list[str]) -> DataFrame:
    """bronze.quarantine rows: entity, source_file, reason, detail, raw (JSON of the raw bronze row;
    `raw_names` are the bronze columns without lineage)."""
    from pyspark.sql import functions as F

    return classified.where(F.col(REASON).isNotNull()).select(
        F.lit(entity_name).alias("entity"),
        F.col("_source_file").alias("source_file"),
        F.col(REASON).alias("reason"),
        F.col(DETAIL).alias("detail"),
        F.to_json(F.struct(*[col(c) for c in raw_names])).alias("raw"),
        F.col("_row_hash"),
        F.col("_loaded_at"),
    )


def classify_customers(bronze: DataFrame, key: bytes) -> DataFrame:
    from pyspark.sql import functions as F

    df = bronze.select(
        "*",
        clean(col("customer_id")).alias(V + "customer_id"),
        token_column(col("email"), key, "email").alias(V + "email_token"),
        token_column(col("phone"), key, "phone").alias(V + "phone_token"),
        token_column(col("first_name"), key, "name").alias(V + "first_name_token"),
        token_column(col("last_name"), key, "name").alias(V + "last_name_token"),
        F.upper(clean(col("country"))).alias(V + "country"),
        clean(col("city")).alias(V + "city"),
        clean(col("postal_code")).alias(V + "postal_code"),
        parse_timestamp(col("created_at")).alias(V + "created_at"),
        parse_timestamp(col("updated_at")).alias(V + "updated_at"),
        parse_bool(col("marketing_opt_in")).alias(V + "marketing_opt_in"),
    )
    df = df.withColumn(V + "has_email", F.col(V + "email_token").isNotNull()).withColumn(
        V + "has_phone", F.col(V + "phone_token").isNotNull()
    )
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("customer_id",)),
        date_check("created_at", F.col(V + "created_at")),
        date_check("updated_at", F.col(V + "updated_at")),
        type_check("marketing_opt_in", F.col(V + "marketing_opt_in"), "boolean (true/false/1/0/yes/no)"),
    ]
    df = with_checks(df, checks)
    # The newest CRM record of a customer wins; rows without updated_at lose to dated ones.
    return deduplicate(df, [F.col(V + "customer_id")], [F.col(V + "updated_at").desc_nulls_last()])


def classify_orders(bronze: DataFrame, settings: Settings) -> DataFrame:
    from pyspark.sql import functions as F

    currency, currency_check = _currency(settings)
    status = F.coalesce(F.lower(clean(col("status"))), F.lit("completed"))
    df = bronze.select(
        "*",
        clean(col("order_id")).alias(V + "order_id"),
        clean(col("customer_id")).alias(V + "customer_id"),
        parse_timestamp(col("order_ts")).alias(V + "order_ts"),
        status.alias(V + "status"),
        currency.alias(V + "currency"),
        parse_decimal(col("order_total"), "decimal(18,2)").alias(V + "order_total"),
    ).withColumn(V + "order_date", F.to_date(F.col(V + "order_ts")))
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("order_id", "customer_id", "order_ts")),
        date_check("order_ts", F.col(V + "order_ts")),
        type_check("order_total", F.col(V + "order_total"), "decimal"),
        _negative("order_total", F.col(V + "order_total"), QuarantineReason.NEGATIVE_AMOUNT),
        currency_check,
        Check(
            QuarantineReason.UNKNOWN_STATUS,
            ~F.col(V + "status").isin(*ORDER_STATUSES),
            F.concat(shown("status", col("status")), F.lit(f" is not one of {', '.join(ORDER_STATUSES)}")),
        ),
    ]
    return deduplicate(with_checks(df, checks), [F.col(V + "order_id")])


def classify_order_items(bronze: DataFrame, accepted_order_ids: DataFrame) -> DataFrame:
    """`accepted_order_ids`: one column `order_id`, the ids in silver.orders (any source)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = bronze.select(
        "*",
        clean(col("order_id")).alias(V + "order_id"),
        clean(col("product_id")).alias(V + "product_id"),
        parse_int(col("quantity")).alias(V + "quantity"),
        parse_decimal(col("unit_price"), "decimal(18,4)").alias(V + "unit_price"),
        parse_int(col("line_number")).alias("_given_line_number"),
        F.coalesce(parse_decimal(col("discount"), "decimal(18,2)"), F.lit(0).cast("decimal(18,2)")).alias(
            V + "discount"
        ),
    )
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("order_id", "product_id", "quantity", "unit_price")),
        type_check("quantity", F.col(V + "quantity"), "integer"),
        type_check("unit_price", F.col(V + "unit_price"), "decimal"),
        type_check("line_number", F.col("_given_line_number"), "integer"),
        type_check("discount", parse_decimal(col("discount"), "decimal(18,2)"), "decimal"),
        _negative("quantity", F.col(V + "quantity"), QuarantineReason.NEGATIVE_QUANTITY, strict=True),
        _negative("unit_price", F.col(V + "unit_price"), QuarantineReason.NEGATIVE_AMOUNT),
        _negative("discount", F.col(V + "discount"), QuarantineReason.NEGATIVE_AMOUNT),
    ]
    df = with_checks(df, checks)
    # A missing line_number is the product's position in its order (by product, then row hash), so
    # it depends on content only; an exact repeat gets the same position and is caught as duplicate.
    position = Window.partitionBy(
        F.col(V + "order_id"), F.col(REASON).isNull(), F.col("_given_line_number").isNull()
    ).orderBy(F.col(V + "product_id"), F.col("_row_hash"))
    df = df.withColumn(
        V + "line_number", F.coalesce(F.col("_given_line_number"), F.dense_rank().over(position))
    ).drop("_given_line_number")
    df = df.withColumn(
        V + "line_amount",
        F.round(
            F.col(V + "quantity").cast("decimal(18,4)") * F.col(V + "unit_price") - F.col(V + "discount"), 2
        ).cast("decimal(18,2)"),
    )
    df = deduplicate(df, [F.col(V + "order_id"), F.col(V + "line_number")])
    known = accepted_order_ids.select(F.col("order_id").alias("_known_order_id")).distinct()
    df = df.join(known, F.col(V + "order_id") == F.col("_known_order_id"), "left")
    unknown = F.col(REASON).isNull() & F.col("_known_order_id").isNull()
    # Detail first: both expressions read the reason as it was before this step.
    return (
        df.withColumn(
            DETAIL,
            F.when(unknown, F.concat(shown("order_id", F.col(V + "order_id")), F.lit(" is not in silver.orders")))
            .otherwise(F.col(DETAIL)),
        )
        .withColumn(REASON, F.when(unknown, F.lit(QuarantineReason.UNKNOWN_ORDER.value)).otherwise(F.col(REASON)))
        .drop("_known_order_id")
    )


def classify_products(bronze: DataFrame, settings: Settings) -> DataFrame:
    from pyspark.sql import functions as F

    currency, currency_check = _currency(settings)
    df = bronze.select(
        "*",
        clean(col("product_id")).alias(V + "product_id"),
        clean(col("name")).alias(V + "name"),
        clean(col("category")).alias(V + "category"),
        clean(col("brand")).alias(V + "brand"),
        parse_decimal(col("price"), "decimal(18,4)").alias(V + "price"),
        currency.alias(V + "currency"),
    )
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("product_id",)),
        type_check("price", F.col(V + "price"), "decimal"),
        _negative("price", F.col(V + "price"), QuarantineReason.NEGATIVE_AMOUNT),
        currency_check,
    ]
    return deduplicate(with_checks(df, checks), [F.col(V + "product_id")])


def classify_events(bronze: DataFrame, key: bytes) -> DataFrame:
    from pyspark.sql import functions as F

    df = bronze.select(
        "*",
        F.coalesce(clean(col("event_id")), F.col("_row_hash")).alias(V + "event_id"),
        parse_timestamp(col("event_ts")).alias(V + "event_ts"),
        F.lower(clean(col("event_type"))).alias(V + "event_type"),
        *[clean(col(c)).alias(V + c) for c in ("customer_id", "anonymous_id", "session_id", "product_id",
                                               "url", "referrer", "user_agent")],
        token_column(col("ip"), key, "ip").alias(V + "ip_token"),
    ).withColumn(V + "event_date", F.to_date(F.col(V + "event_ts")))
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("event_ts", "event_type")),
        date_check("event_ts", F.col(V + "event_ts")),
    ]
    return deduplicate(with_checks(df, checks), [F.col(V + "event_id")])


def raw_columns(bronze: DataFrame) -> list[str]:
    return [c for c in bronze.columns if c not in BRONZE_LINEAGE]


__all__ = [
    "raw_columns",
    "accepted",
    "classify_customers",
    "classify_events",
    "classify_order_items",
    "classify_orders",
    "classify_products",
    "is_blank",
    "quarantined",
    "silver_columns",
    "silver_types",
]
