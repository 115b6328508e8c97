"""The AWS RFM guidance CSV as a compatibility source (bronze.aws_rfm_guidance -> silver).

PURCHASED rows become orders (one per CustomerID and Date) and order lines; VIEWED, PROCESSED and
other event names become events; customers not in the CRM file are added from it. Each guidance row
counts once in reconciliation: accepted when it produced an order line or an event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rfmlake.contract.entities import QuarantineReason
from rfmlake.ingest.bronze import CORRUPT_COLUMN
from rfmlake.ingest.conform import V, silver_columns, silver_types
from rfmlake.ingest.parsing import (
    REASON,
    Check,
    clean,
    col,
    date_check,
    deduplicate,
    iso_from_parts,
    malformed_check,
    missing_key_checks,
    parse_decimal,
    parse_int,
    parse_timestamp,
    type_check,
    with_checks,
)
from rfmlake.ingest.pii import token_column

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

    from rfmlake.settings import Settings

ORDER_ID_PREFIX = "awsrfm-"
# e.g. "Mon, 19 Sep 2022 12:16:01 +0530" (RFC 2822; the weekday is optional)
RFC_2822 = r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}:\d{2}(?::\d{2})?)\s+([+-]\d{4})\s*$"
EVENT_TYPES: dict[str, str] = {"viewed": "product_view", "processed": "processed", "purchased": "purchase"}
EMAIL_CHANNELS = ("EMAIL",)
PHONE_CHANNELS = ("SMS", "VOICE", "PHONE", "MOBILE")


def parse_rfc2822(column: Column) -> Column:
    """RFC 2822 date -> UTC timestamp; ISO 8601 is accepted too. Null when neither."""
    from pyspark.sql import functions as F

    def group(i: int) -> Column:
        return F.regexp_extract(column, RFC_2822, i)

    time = F.when(F.length(group(4)) == 5, F.concat(group(4), F.lit(":00"))).otherwise(group(4))
    iso = iso_from_parts(group(3), group(2), group(1), time, group(5))
    return F.when(column.rlike(RFC_2822), iso.cast("timestamp")).otherwise(parse_timestamp(column))


def classify_guidance(bronze: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    event = F.upper(clean(col("eventname")))
    purchased = F.coalesce(event == "PURCHASED", F.lit(False))
    df = bronze.select(
        "*",
        event.alias("_event_name"),
        purchased.alias("_purchased"),
        clean(col("customerid")).alias(V + "customer_id"),
        clean(col("productcode")).alias(V + "product_id"),
        parse_rfc2822(col("date")).alias("_ts"),
        parse_int(col("quantity")).alias(V + "quantity"),
        parse_decimal(col("unitprice"), "decimal(18,4)").alias(V + "unit_price"),
    )
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("eventname", "productcode", "customerid", "date")),
        *missing_key_checks(("quantity", "unitprice"), when=F.col("_purchased")),
        date_check("date", F.col("_ts")),
        type_check("quantity", F.col(V + "quantity"), "integer"),
        type_check("unitprice", F.col(V + "unit_price"), "decimal"),
        Check(QuarantineReason.NEGATIVE_QUANTITY, F.col("_purchased") & (F.col(V + "quantity") <= 0),
              F.concat(F.lit("quantity="), F.col(V + "quantity").cast("string"))),
        Check(QuarantineReason.NEGATIVE_AMOUNT, F.col(V + "unit_price") < 0,
              F.concat(F.lit("unitprice="), F.col(V + "unit_price").cast("string"))),
    ]
    # Only an exact repeat of a guidance row is a duplicate; two rows with the same customer, date
    # and product are two lines of one order.
    return deduplicate(with_checks(df, checks), [F.col("_row_hash")])


def _ok(classified: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return classified.where(F.col(REASON).isNull())


def guidance_order_items(classified: DataFrame) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order_key = F.concat_ws("|", F.col(V + "customer_id"), F.trim(col("date")))
    lines = _ok(classified).where(F.col("_purchased")).withColumn(
        "order_id", F.concat(F.lit(ORDER_ID_PREFIX), F.substring(F.sha2(order_key, 256), 1, 16))
    )
    position = Window.partitionBy("order_id").orderBy(F.col(V + "product_id"), F.col("_row_hash"))
    types = silver_types("order_items")
    discount = F.lit(0).cast("decimal(18,2)")
    values = {
        "order_id": F.col("order_id"),
        "line_number": F.row_number().over(position),
        "product_id": F.col(V + "product_id"),
        "quantity": F.col(V + "quantity"),
        "unit_price": F.col(V + "unit_price"),
        "discount": discount,
        "line_amount": F.round(F.col(V + "quantity").cast("decimal(18,4)") * F.col(V + "unit_price") - discount, 2),
        "_source_file": F.col("_source_file"),
        "_row_hash": F.col("_row_hash"),
    }
    return lines.select(
        *[values[n].cast(types[n]).alias(n) for n in silver_columns("order_items")],
        F.col(V + "customer_id").alias("_customer_id"),
        F.col("_ts"),
    )


def guidance_orders(items_with_header: DataFrame, settings: Settings) -> DataFrame:
    """One completed order per (CustomerID, Date) in the default currency; lineage from its first line."""
    from pyspark.sql import functions as F

    types = silver_types("orders")
    grouped = items_with_header.groupBy("order_id").agg(
        F.min("_customer_id").alias("customer_id"),
        F.min("_ts").alias("order_ts"),
        F.min("_source_file").alias("_source_file"),
        F.min("_row_hash").alias("_row_hash"),
    )
    values = {
        "order_id": F.col("order_id"),
        "customer_id": F.col("customer_id"),
        "order_ts": F.col("order_ts"),
        "order_date": F.to_date("order_ts"),
        "status": F.lit("completed"),
        "currency": F.lit(settings.default_currency),
        "order_total": F.lit(None),
        "_source_file": F.col("_source_file"),
        "_row_hash": F.col("_row_hash"),
    }
    return grouped.select(*[values[n].cast(types[n]).alias(n) for n in silver_columns("orders")])


def guidance_events(classified: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    types = silver_types("events")
    name = F.lower(F.col("_event_name"))
    mapping = F.create_map(*[F.lit(x) for pair in EVENT_TYPES.items() for x in pair])
    values: dict[str, Column] = {
        "event_id": F.col("_row_hash"),
        "event_ts": F.col("_ts"),
        "event_date": F.to_date("_ts"),
        "event_type": F.coalesce(F.element_at(mapping, name), name),
        "customer_id": F.col(V + "customer_id"),
        "product_id": F.col(V + "product_id"),
        "_source_file": F.col("_source_file"),
        "_row_hash": F.col("_row_hash"),
    }
    rows = _ok(classified).where(~F.col("_purchased"))
    return rows.select(
        *[values.get(n, F.lit(None)).cast(types[n]).alias(n) for n in silver_columns("events")]
    )


def guidance_customers(classified: DataFrame, key: bytes, crm_customer_ids: DataFrame) -> DataFrame:
    """Customers seen in the guidance file but not in the CRM file, from their latest guidance row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    types = silver_types("customers")
    latest = Window.partitionBy(V + "customer_id").orderBy(
        F.col("_ts").desc(), F.col("_source_file").desc(), F.col("_row_hash").desc()
    )
    channel = F.upper(clean(col("channeltype")))
    email_token = F.when(channel.isin(*EMAIL_CHANNELS), token_column(col("address"), key, "email"))
    phone_token = F.when(channel.isin(*PHONE_CHANNELS), token_column(col("address"), key, "phone"))
    values: dict[str, Column] = {
        "customer_id": F.col(V + "customer_id"),
        "email_token": email_token,
        "phone_token": phone_token,
        "has_email": email_token.isNotNull(),
        "has_phone": phone_token.isNotNull(),
        "country": F.upper(clean(col("country"))),
        "city": clean(col("city")),
        "_source_file": F.col("_source_file"),
        "_row_hash": F.col("_row_hash"),
    }
    known = crm_customer_ids.select(F.col("customer_id").alias(V + "customer_id"))
    newest = (
        _ok(classified)
        .withColumn("_rank", F.row_number().over(latest))
        .where(F.col("_rank") == 1)
        .join(known, V + "customer_id", "left_anti")
    )
    return newest.select(
        *[values.get(n, F.lit(None)).cast(types[n]).alias(n) for n in silver_columns("customers")]
    )
