"""Landing contract v1 (DESIGN.md section 3) as data, and the silver schemas every runtime reads.

Types are Spark SQL type names; DuckDB and Athena read the Parquet that Spark writes with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

LANDING_FORMATS: dict[str, str] = {".csv": "csv", ".jsonl": "json", ".json": "json", ".ndjson": "json",
                                   ".parquet": "parquet", ".log": "text", ".txt": "text"}
ORDER_STATUSES: tuple[str, ...] = ("completed", "pending", "cancelled", "returned")


class QuarantineReason(StrEnum):
    """Why a landed row did not reach silver. Stored in bronze.quarantine.reason."""

    MISSING_KEY = "missing_key"              # a required column is absent or empty
    BAD_KEY = "bad_key"                      # an id outside the contract's id pattern (could not be served)
    BAD_TYPE = "bad_type"                    # a value does not parse as its column's type
    UNPARSABLE_DATE = "unparsable_date"      # a timestamp/date is not ISO 8601
    IMPLAUSIBLE_DATE = "implausible_date"    # a timestamp outside the plausible window (settings.ingest)
    NEGATIVE_QUANTITY = "negative_quantity"  # quantity <= 0 on an order line
    NEGATIVE_AMOUNT = "negative_amount"      # a price, total or discount below zero; an exchange rate <= 0
    DISCOUNT_EXCEEDS_LINE = "discount_exceeds_line"  # a line's discount is more than quantity x unit price
    UNKNOWN_CURRENCY = "unknown_currency"    # not an ISO 4217 currency code (rfmlake.contract.currencies)
    UNKNOWN_STATUS = "unknown_status"        # order status outside the contract's values
    DUPLICATE = "duplicate"                  # the same row (same key, same content) arrived again
    CONFLICTING_DUPLICATE = "conflicting_duplicate"  # same key, other content; a newer row won
    UNKNOWN_ORDER = "unknown_order"          # an order line whose order is not in orders
    UNPARSABLE_LINE = "unparsable_line"      # an access-log line that is not Combined Log Format
    MALFORMED_RECORD = "malformed_record"    # a CSV/JSON record that cannot be read as a row
    ERASED_CUSTOMER = "erased_customer"      # the row belongs to an erased customer (suppression list)


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "string"
    required: bool = False
    pii: bool = False
    description: str = ""


@dataclass(frozen=True)
class Entity:
    """One landing entity: the folder name under <landing>/ and the columns the contract defines."""

    name: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""
    formats: tuple[str, ...] = ("csv", "json", "parquet")
    extra: dict[str, str] = field(default_factory=dict)
    # Other names a landed column may carry (lower case) -> the contract column it stands for, read
    # when the contract column is empty (e.g. the ECB Data Portal's CSV for currency_rates).
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        Entity(
            "customers",
            key=("customer_id",),
            description="CRM customer records; the newest updated_at per customer wins",
            columns=(
                Column("customer_id", required=True),
                Column("email", pii=True),
                Column("phone", pii=True),
                Column("first_name", pii=True),
                Column("last_name", pii=True),
                Column("country"),
                Column("city"),
                Column("postal_code"),
                Column("created_at", "timestamp"),
                Column("updated_at", "timestamp"),
                Column("marketing_opt_in", "boolean"),
            ),
        ),
        Entity(
            "orders",
            key=("order_id",),
            description="order headers",
            columns=(
                Column("order_id", required=True),
                Column("customer_id", required=True),
                Column("order_ts", "timestamp", required=True),
                Column("status"),
                Column("currency"),
                Column("order_total", "decimal(18,2)"),
            ),
        ),
        Entity(
            "order_items",
            key=("order_id", "line_number"),
            description="order lines; line_number defaults to the product's position",
            columns=(
                Column("order_id", required=True),
                Column("product_id", required=True),
                Column("quantity", "int", required=True),
                Column("unit_price", "decimal(18,4)", required=True),
                Column("line_number", "int"),
                Column("discount", "decimal(18,2)"),
            ),
        ),
        Entity(
            "products",
            key=("product_id",),
            description="product catalog",
            columns=(
                Column("product_id", required=True),
                Column("name"),
                Column("category"),
                Column("brand"),
                Column("price", "decimal(18,4)"),
                Column("currency"),
            ),
        ),
        Entity(
            "events",
            key=("event_id",),
            description="web/app clickstream; event_id is derived from the row when absent",
            columns=(
                Column("event_ts", "timestamp", required=True),
                Column("event_type", required=True),
                Column("event_id"),
                Column("customer_id"),
                Column("anonymous_id"),
                Column("session_id"),
                Column("product_id"),
                Column("url"),
                Column("referrer"),
                Column("user_agent"),
                Column("ip", pii=True),
            ),
        ),
        Entity(
            "currency_rates",
            key=("rate_date", "base_currency", "currency"),
            description=(
                "exchange rates by day: one unit of base_currency is worth `rate` units of currency, from "
                "rate_date until the currency's next rate (e.g. a central bank's reference rates: the ECB "
                "publishes base EUR). The ECB Data Portal's CSV columns TIME_PERIOD, OBS_VALUE and "
                "CURRENCY_DENOM are read as rate_date, rate and base_currency"
            ),
            columns=(
                Column("rate_date", "date", required=True),
                Column("currency", required=True),
                Column("rate", "double", required=True),
                Column("base_currency", required=True),
            ),
            aliases={"time_period": "rate_date", "obs_value": "rate", "currency_denom": "base_currency"},
        ),
        Entity(
            "access_logs",
            key=(),
            description="web server access logs, Combined Log Format, one file per server/day",
            formats=("text",),
            columns=(),
        ),
        Entity(
            "aws_rfm_guidance",
            key=(),
            description=(
                "compatibility source: the CSV of the AWS RFM guidance for Amazon Pinpoint "
                "(EventName, ProductCode, ..., CustomerID, ..., Date); PURCHASED rows become orders "
                "and order lines, VIEWED/PROCESSED rows become events"
            ),
            formats=("csv",),
            columns=(
                Column("EventName", required=True),
                Column("ProductCode", required=True),
                Column("ProductName"),
                Column("ProductDescription"),
                Column("UnitPrice", "decimal(18,4)"),
                Column("Quantity", "int"),
                Column("CustomerID", required=True),
                Column("Username", pii=True),
                Column("ChannelType"),
                Column("Address", pii=True),
                Column("City"),
                Column("State"),
                Column("Country"),
                Column("Date", "timestamp", required=True),
            ),
        ),
    )
}


def entity(name: str) -> Entity:
    try:
        return ENTITIES[name]
    except KeyError:
        raise KeyError(f"unknown entity {name!r}; known: {sorted(ENTITIES)}") from None


# Silver tables: the typed, conformed, deduplicated, tokenized shape. Analysts and dbt read these.
# (name, type, description). Every silver table also carries _source_file and _row_hash.
SILVER_TABLES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "customers": (
        ("customer_id", "string", "CRM customer id"),
        ("email_token", "string", "HMAC-SHA256 of the trimmed, lower-cased email (hex); null when absent"),
        ("phone_token", "string", "HMAC-SHA256 of the phone's digits (with leading + kept)"),
        ("first_name_token", "string", "HMAC-SHA256 of the trimmed, lower-cased first name"),
        ("last_name_token", "string", "HMAC-SHA256 of the trimmed, lower-cased last name"),
        ("has_email", "boolean", "an email address was given"),
        ("has_phone", "boolean", "a phone number was given"),
        ("country", "string", "ISO 3166 alpha-2, upper case"),
        ("city", "string", "city as given, trimmed"),
        ("postal_code", "string", "postal code as given, trimmed"),
        ("created_at", "timestamp", "UTC"),
        ("updated_at", "timestamp", "UTC"),
        ("marketing_opt_in", "boolean", "consent to marketing; null when unknown"),
    ),
    "orders": (
        ("order_id", "string", "order id"),
        ("customer_id", "string", "buyer; may be a guest id absent from customers"),
        ("order_ts", "timestamp", "UTC"),
        ("order_date", "date", "UTC date of order_ts"),
        ("status", "string", "completed | pending | cancelled | returned"),
        ("currency", "string", "ISO 4217 currency code"),
        ("order_total", "decimal(18,2)", "header total in currency, as landed; null when absent"),
    ),
    "order_items": (
        ("order_id", "string", "order id; always present in silver.orders"),
        ("line_number", "int", "line within the order"),
        ("product_id", "string", "product id"),
        ("quantity", "int", "units, > 0"),
        ("unit_price", "decimal(18,4)", "price per unit in the order's currency"),
        ("discount", "decimal(18,2)", "discount on the line in the order's currency, 0 when absent"),
        ("line_amount", "decimal(18,2)", "quantity * unit_price - discount, rounded to cents"),
    ),
    "products": (
        ("product_id", "string", "product id"),
        ("name", "string", ""),
        ("category", "string", ""),
        ("brand", "string", ""),
        ("price", "decimal(18,4)", "list price in currency"),
        ("currency", "string", "ISO 4217"),
    ),
    "events": (
        ("event_id", "string", "as landed, or a hash of the row when absent"),
        ("event_ts", "timestamp", "UTC"),
        ("event_date", "date", "UTC date of event_ts"),
        ("event_type", "string", "lower case, e.g. page_view, product_view, add_to_cart, purchase"),
        ("customer_id", "string", "known customer, if logged in"),
        ("anonymous_id", "string", "device/cookie id"),
        ("session_id", "string", ""),
        ("product_id", "string", ""),
        ("url", "string", ""),
        ("referrer", "string", ""),
        ("user_agent", "string", ""),
        ("ip_token", "string", "HMAC-SHA256 of the IP address"),
    ),
    "access_logs": (
        ("ip_token", "string", "HMAC-SHA256 of the client IP"),
        ("remote_user_token", "string", "HMAC-SHA256 of the authenticated user, null for '-'"),
        ("request_ts", "timestamp", "UTC"),
        ("request_date", "date", "UTC date"),
        ("method", "string", "HTTP method"),
        ("path", "string", "request path and query"),
        ("protocol", "string", "e.g. HTTP/1.1"),
        ("status", "int", "HTTP status"),
        ("bytes_sent", "bigint", "response size, 0 for '-'"),
        ("referrer", "string", "null for '-'"),
        ("user_agent", "string", "null for '-'"),
    ),
    "currency_rates": (
        ("rate_date", "date", "the day the rate applies from (until the currency's next rate)"),
        ("base_currency", "string", "ISO 4217 code of the currency quoted against"),
        ("currency", "string", "ISO 4217 code of the currency quoted"),
        ("rate", "double", "units of currency per one unit of base_currency, > 0"),
    ),
}
LINEAGE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("_source_file", "string", "landing file the row came from (path relative to the landing folder)"),
    ("_row_hash", "string", "SHA-256 of the landed row's values"),
)
