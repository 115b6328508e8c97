"""The AWS RFM guidance CSV as a compatibility source (bronze.aws_rfm_guidance -> silver), in SQL.

PURCHASED rows become orders (one per CustomerID and Date) and order lines; VIEWED, PROCESSED and
other event names become events; customers not in the CRM file are added from it. Each guidance row
counts once in reconciliation: accepted when it produced an order line or an event.
"""

from __future__ import annotations

from rfmlake.contract.entities import QuarantineReason
from rfmlake.ingest.conform import (
    CORRUPT_COLUMN,
    ConformRules,
    _checked,
    _layer,
    deduplicate,
    silver_columns,
    silver_types,
    sql_type,
    v,
)
from rfmlake.ingest.sql import (
    REASON,
    Check,
    bad_key_checks,
    clean,
    col,
    date_check,
    ident,
    iso_from_parts,
    lit,
    lit_list,
    malformed_check,
    missing_key_checks,
    parse_decimal,
    parse_int,
    parse_timestamp,
    plausible_check,
    token,
    type_check,
)

ORDER_ID_PREFIX = "awsrfm-"
# e.g. "Mon, 19 Sep 2022 12:16:01 +0530" (RFC 2822; the weekday is optional)
RFC_2822 = r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}:\d{2}(?::\d{2})?)\s+([+-]\d{4})\s*$"
EVENT_TYPES: dict[str, str] = {"viewed": "product_view", "processed": "processed", "purchased": "purchase"}
EMAIL_CHANNELS = ("EMAIL",)
PHONE_CHANNELS = ("SMS", "VOICE", "PHONE", "MOBILE")


def parse_rfc2822(x: str) -> str:
    """RFC 2822 date -> UTC timestamp; ISO 8601 is accepted too. Null when neither."""

    def group(i: int) -> str:
        return f"regexp_extract({x}, {lit(RFC_2822)}, {i})"

    time = f"CASE WHEN length({group(4)}) = 5 THEN {group(4)} || ':00' ELSE {group(4)} END"
    iso = iso_from_parts(group(3), group(2), group(1), time, group(5))
    return (f"CASE WHEN regexp_matches({x}, {lit(RFC_2822)}) THEN TRY_CAST({iso} AS TIMESTAMPTZ) "
            f"ELSE {parse_timestamp(x)} END")


def guidance_order_id(customer_id: str, date_text: str) -> str:
    """One order per (CustomerID, Date): a stable id from both."""
    return f"{lit(ORDER_ID_PREFIX)} || substring(sha256(concat_ws('|', {customer_id}, trim({date_text}))), 1, 16)"


def classify_guidance(source: str, rules: ConformRules) -> str:
    event = f"upper({clean(col('eventname'))})"
    typed = _layer(source, ", ".join([
        "*",
        f"{event} AS _event_name",
        f"coalesce({event} = 'PURCHASED', false) AS _purchased",
        f"{clean(col('customerid'))} AS {v('customer_id')}",
        f"{clean(col('productcode'))} AS {v('product_id')}",
        f"{parse_rfc2822(col('date'))} AS _ts",
        f"{parse_int(col('quantity'))} AS {v('quantity')}",
        f"{parse_decimal(col('unitprice'), 'DECIMAL(18, 4)')} AS {v('unit_price')}",
    ]), "gt")
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("eventname", "productcode", "customerid", "date")),
        *missing_key_checks(("quantity", "unitprice"), when="_purchased"),
        *bad_key_checks(("customerid", "productcode")),
        date_check("date", "_ts"),
        plausible_check("date", "_ts", rules.earliest.isoformat(), rules.latest.isoformat()),
        type_check("quantity", v("quantity"), "integer"),
        type_check("unitprice", v("unit_price"), "decimal"),
        Check(QuarantineReason.NEGATIVE_QUANTITY, f"(_purchased AND {v('quantity')} <= 0)",
              f"('quantity=' || CAST({v('quantity')} AS VARCHAR))"),
        Check(QuarantineReason.NEGATIVE_AMOUNT, f"({v('unit_price')} < 0)",
              f"('unitprice=' || CAST({v('unit_price')} AS VARCHAR))"),
    ]
    # Only an exact repeat of a guidance row is a duplicate; two rows with the same customer, date
    # and product are two lines of one order.
    return deduplicate(_checked(typed, checks, "_row_hash", "gc"), ["_row_hash"], alias="gd")


def _ok(classified: str) -> str:
    return f"(SELECT * FROM {classified} AS g WHERE {REASON} IS NULL)"


def _cast_columns(table: str, values: dict[str, str]) -> str:
    types = silver_types(table)
    return ", ".join(f"CAST({values.get(n, 'NULL')} AS {sql_type(types[n])}) AS {ident(n)}"
                     for n in silver_columns(table))


def guidance_order_items(classified: str) -> str:
    """Silver order lines of the accepted PURCHASED rows, plus `_customer_id` and `_ts` of each."""
    lines = _layer(_ok(classified), f"*, {guidance_order_id(v('customer_id'), col('date'))} AS _order_id", "gl")
    position = "row_number() OVER (PARTITION BY _order_id ORDER BY " \
               f"{v('product_id')} ASC NULLS LAST, _row_hash ASC NULLS LAST)"
    values = {
        "order_id": "_order_id",
        "line_number": position,
        "product_id": v("product_id"),
        "quantity": v("quantity"),
        "unit_price": v("unit_price"),
        "discount": "0",
        "line_amount": f"round(CAST({v('quantity')} AS DECIMAL(18, 4)) * {v('unit_price')}, 2)",
        "_source_file": "_source_file",
        "_row_hash": "_row_hash",
    }
    return (f"(SELECT {_cast_columns('order_items', values)}, {v('customer_id')} AS _customer_id, _ts "
            f"FROM {lines} AS gi WHERE _purchased)")


def guidance_orders(items_with_header: str, default_currency: str) -> str:
    """One completed order per (CustomerID, Date) in the default currency; lineage from its first line."""
    grouped = (f"(SELECT order_id, min(_customer_id) AS customer_id, min(_ts) AS order_ts, "
               f"min(_source_file) AS _source_file, min(_row_hash) AS _row_hash FROM {items_with_header} AS gi "
               "GROUP BY order_id)")
    values = {
        "order_id": "order_id",
        "customer_id": "customer_id",
        "order_ts": "order_ts",
        "order_date": "CAST(order_ts AS DATE)",
        "status": "'completed'",
        "currency": lit(default_currency),
        "order_total": "NULL",
        "_source_file": "_source_file",
        "_row_hash": "_row_hash",
    }
    return f"(SELECT {_cast_columns('orders', values)} FROM {grouped} AS go)"


def guidance_events(classified: str) -> str:
    name = "lower(_event_name)"
    mapped = "CASE " + " ".join(f"WHEN {name} = {lit(k)} THEN {lit(t)}" for k, t in EVENT_TYPES.items()) + \
             f" ELSE {name} END"
    values = {
        "event_id": "_row_hash",
        "event_ts": "_ts",
        "event_date": "CAST(_ts AS DATE)",
        "event_type": mapped,
        "customer_id": v("customer_id"),
        "product_id": v("product_id"),
        "_source_file": "_source_file",
        "_row_hash": "_row_hash",
    }
    return f"(SELECT {_cast_columns('events', values)} FROM {_ok(classified)} AS ge WHERE NOT _purchased)"


def guidance_customers(classified: str, key: bytes, crm_customer_ids: str) -> str:
    """Customers seen in the guidance file but not in the CRM file (`crm_customer_ids`: a relation
    with one column customer_id), from their latest guidance row."""
    channel = f"upper({clean(col('channeltype'))})"
    email_token = f"CASE WHEN {channel} IN ({lit_list(EMAIL_CHANNELS)}) THEN {token(col('address'), key, 'email')} END"
    phone_token = f"CASE WHEN {channel} IN ({lit_list(PHONE_CHANNELS)}) THEN {token(col('address'), key, 'phone')} END"
    latest = (f"row_number() OVER (PARTITION BY {v('customer_id')} ORDER BY _ts DESC NULLS LAST, "
              "_source_file DESC NULLS LAST, _row_hash DESC NULLS LAST)")
    ranked = _layer(_ok(classified), f"*, {latest} AS _latest", "gr")
    newest = (f"(SELECT r.* FROM {ranked} AS r LEFT JOIN (SELECT DISTINCT customer_id FROM {crm_customer_ids}) "
              f"AS crm ON r.{v('customer_id')} = crm.customer_id WHERE r._latest = 1 AND crm.customer_id IS NULL)")
    tokens = _layer(newest, f"*, {email_token} AS _email_token, {phone_token} AS _phone_token", "gk")
    values = {
        "customer_id": v("customer_id"),
        "email_token": "_email_token",
        "phone_token": "_phone_token",
        "has_email": "_email_token IS NOT NULL",
        "has_phone": "_phone_token IS NOT NULL",
        "country": f"upper({clean(col('country'))})",
        "city": clean(col("city")),
        "_source_file": "_source_file",
        "_row_hash": "_row_hash",
    }
    return f"(SELECT {_cast_columns('customers', values)} FROM {tokens} AS gcu)"


__all__ = ["ORDER_ID_PREFIX", "classify_guidance", "guidance_customers", "guidance_events", "guidance_order_id",
           "guidance_order_items", "guidance_orders", "parse_rfc2822"]
