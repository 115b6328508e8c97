"""Bronze -> silver for the contract entities, as SQL over a relation of bronze rows.

Each `classify_*` returns a SELECT that keeps every bronze row and adds the typed values (columns
`__v_<silver column>`), `_reason`/`_detail` (null when accepted) and `_record_key` (the business
key the incremental merge recomputes by). Reasons are tried in sql.REASON_ORDER; within a reason,
in the order the checks are listed. `accepted` and `quarantined` then split a classified relation.
The same text runs on DuckDB and, transpiled, on Spark (rfmlake.ingest.engine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from rfmlake.contract.entities import ENTITIES, LINEAGE_COLUMNS, ORDER_STATUSES, SILVER_TABLES, QuarantineReason
from rfmlake.ingest.sql import (
    DETAIL,
    REASON,
    Check,
    as_text,
    bad_key_checks,
    clean,
    col,
    date_check,
    ident,
    lit,
    lit_list,
    malformed_check,
    missing_key_checks,
    negative_check,
    parse_bool,
    parse_date,
    parse_decimal,
    parse_int,
    parse_timestamp,
    plausible_check,
    shown,
    token,
    type_check,
    with_checks,
)

V = "__v_"  # prefix of the typed value columns in a classified relation
CORRUPT_COLUMN = "_corrupt_record"
RECORD_KEY = "_record_key"


def v(name: str) -> str:
    return ident(V + name)


@dataclass(frozen=True)
class ConformRules:
    """What classification depends on besides the row itself. Any change to it changes results for
    rows already in silver, so the lake remembers its fingerprint and rebuilds when it differs."""

    key: bytes                       # the PII key (HMAC tokens)
    default_currency: str
    currencies: tuple[str, ...]      # the ISO 4217 codes (rfmlake.contract.currencies)
    earliest: date                   # plausible window for timestamps: [earliest, latest)
    latest: date

    def fingerprint(self) -> dict[str, str]:
        import hashlib

        return {"default_currency": self.default_currency, "currencies": ",".join(self.currencies),
                "earliest": self.earliest.isoformat(), "latest": self.latest.isoformat(),
                "key": hashlib.sha256(b"rfmlake conform key " + self.key).hexdigest()[:16]}


def silver_columns(table: str) -> list[str]:
    return [name for name, _, _ in SILVER_TABLES[table]] + [name for name, _, _ in LINEAGE_COLUMNS]


def silver_types(table: str) -> dict[str, str]:
    return {name: type_name for name, type_name, _ in (*SILVER_TABLES[table], *LINEAGE_COLUMNS)}


_SQL_TYPES = {"string": "VARCHAR", "timestamp": "TIMESTAMPTZ", "date": "DATE", "int": "INTEGER", "bigint": "BIGINT",
              "boolean": "BOOLEAN", "double": "DOUBLE"}


def sql_type(type_name: str) -> str:
    """The SQL type of a contract type name ('decimal(18,2)' passes through)."""
    return _SQL_TYPES.get(type_name, type_name.upper())


def accepted(classified: str, table: str) -> str:
    """The silver rows: typed columns renamed to the silver schema, exactly its types and order."""
    lineage = {name for name, _, _ in LINEAGE_COLUMNS}
    types = silver_types(table)
    columns = ", ".join(
        f"CAST({col(name) if name in lineage else v(name)} AS {sql_type(types[name])}) AS {ident(name)}"
        for name in silver_columns(table)
    )
    return f"SELECT {columns} FROM {classified} WHERE {REASON} IS NULL"


RAW = "_raw"  # a classified row's raw bronze values as JSON, for the quarantine (quarantined rows only)


def slim(classified: str, table: str | None, raw_names: Sequence[str], keep: Sequence[str] = ()) -> str:
    """What later steps read of a classified relation: the silver table's typed values, lineage,
    reason, detail, record key, the raw row as JSON for quarantined rows only, and `keep`. Keeping
    every raw and intermediate column of a big table costs more than classifying it."""
    raw = ", ".join(f"{ident(c)} := {col(c)}" for c in raw_names)
    lineage = {name for name, _, _ in LINEAGE_COLUMNS}
    values = [v(name) for name in silver_columns(table) if name not in lineage] if table else []
    columns = ", ".join([*values, *(col(k) for k in keep), "_source_file", "_row_hash", "_loaded_at", REASON, DETAIL,
                         RECORD_KEY, f"CASE WHEN {REASON} IS NOT NULL THEN to_json(struct_pack({raw})) END AS {RAW}"])
    return f"(SELECT {columns} FROM {classified} AS slim)"


def quarantined(classified: str, entity_name: str) -> str:
    """bronze.quarantine rows of a `slim` classified relation: entity, source_file, reason, detail,
    raw (JSON of the raw bronze row), record_key, _row_hash, _loaded_at."""
    return (
        f"SELECT {lit(entity_name)} AS entity, _source_file AS source_file, {REASON} AS reason, "
        f"{DETAIL} AS detail, {RAW} AS raw, CAST({RECORD_KEY} AS VARCHAR) AS record_key, "
        f"_row_hash, _loaded_at FROM {classified} WHERE {REASON} IS NOT NULL"
    )


def _layer(source: str, select: str, alias: str) -> str:
    """`(SELECT <select> FROM <source> AS <alias>)`: a relation name or a parenthesised query in,
    a parenthesised query out, so layers nest."""
    return f"(SELECT {select} FROM {source} AS {alias})"


def _checked(typed: str, checks: Sequence[Check], record_key: str, alias: str) -> str:
    reason, detail = with_checks(checks)
    return _layer(typed, f"*, {reason} AS _reason0, {detail} AS _detail0, {record_key} AS {RECORD_KEY}", alias)


def _final(source: str, alias: str) -> str:
    """Row-local reasons only (no deduplication): `_reason`/`_detail` from the checks."""
    return _layer(source, f"*, _reason0 AS {REASON}, _detail0 AS {DETAIL}", alias)


def deduplicate(checked: str, key: Sequence[str], newest_first: Sequence[str] = (), alias: str = "d",
                out: tuple[str, str] = (REASON, DETAIL)) -> str:
    """Among rows not yet quarantined, keep one per key: the first by `newest_first`, then the
    lexicographically last _source_file, then the highest _row_hash (never row order or
    partitioning). A loser with the winner's _row_hash is a duplicate, any other a conflicting one."""
    order = ", ".join([*newest_first, "_source_file DESC NULLS LAST", "_row_hash DESC NULLS LAST"])
    window = f"PARTITION BY {', '.join(key)}, _reason0 IS NULL ORDER BY {order}"
    ranked = _layer(checked, f"*, row_number() OVER ({window}) AS _rank, first_value(_row_hash) OVER ({window}) "
                             f"AS _winner_hash, first_value(_source_file) OVER ({window}) AS _winner_file",
                    f"{alias}_ranked")
    key_text = "concat_ws('|', " + ", ".join(f"coalesce({as_text(k)}, '')" for k in key) + ")"
    loser = "_reason0 IS NULL AND _rank > 1"
    same = "_row_hash = _winner_hash"
    reason = (f"CASE WHEN {loser} AND {same} THEN {lit(QuarantineReason.DUPLICATE.value)} "
              f"WHEN {loser} THEN {lit(QuarantineReason.CONFLICTING_DUPLICATE.value)} ELSE _reason0 END")
    detail = (f"CASE WHEN {loser} AND {same} THEN 'same row as kept from ' || _winner_file || ' (key ' || "
              f"{key_text} || ')' WHEN {loser} THEN 'key ' || {key_text} || ' has other content; kept the row from ' "
              f"|| _winner_file ELSE _detail0 END")
    return _layer(ranked, f"*, {reason} AS {out[0]}, {detail} AS {out[1]}", alias)


def _currency(rules: ConformRules) -> tuple[str, Check]:
    value = f"coalesce(upper({clean(col('currency'))}), {lit(rules.default_currency)})"
    return value, currency_check("currency", value, col("currency"), rules)


def currency_check(name: str, value: str, raw: str, rules: ConformRules) -> Check:
    """unknown_currency when `value` (upper-cased, non-null) is not an ISO 4217 code."""
    return Check(QuarantineReason.UNKNOWN_CURRENCY, f"NOT ({value} IN ({lit_list(rules.currencies)}))",
                 f"({shown(name, raw)} || ' is not an ISO 4217 currency code')")


def _timestamp_checks(name: str, rules: ConformRules) -> list[Check]:
    parsed = v(name)
    return [date_check(name, parsed), plausible_check(name, parsed, rules.earliest.isoformat(),
                                                      rules.latest.isoformat())]


def classify_customers(source: str, rules: ConformRules) -> str:
    key = rules.key
    typed = _layer(source, ", ".join([
        "*",
        f"{clean(col('customer_id'))} AS {v('customer_id')}",
        f"{token(col('email'), key, 'email')} AS {v('email_token')}",
        f"{token(col('phone'), key, 'phone')} AS {v('phone_token')}",
        f"{token(col('first_name'), key, 'name')} AS {v('first_name_token')}",
        f"{token(col('last_name'), key, 'name')} AS {v('last_name_token')}",
        f"upper({clean(col('country'))}) AS {v('country')}",
        f"{clean(col('city'))} AS {v('city')}",
        f"{clean(col('postal_code'))} AS {v('postal_code')}",
        f"{parse_timestamp(col('created_at'))} AS {v('created_at')}",
        f"{parse_timestamp(col('updated_at'))} AS {v('updated_at')}",
        f"{parse_bool(col('marketing_opt_in'))} AS {v('marketing_opt_in')}",
    ]), "ct")
    typed = _layer(typed, f"*, {v('email_token')} IS NOT NULL AS {v('has_email')}, "
                          f"{v('phone_token')} IS NOT NULL AS {v('has_phone')}", "ct2")
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("customer_id",)),
        *bad_key_checks(("customer_id",)),
        *_timestamp_checks("created_at", rules),
        *_timestamp_checks("updated_at", rules),
        type_check("marketing_opt_in", v("marketing_opt_in"), "boolean (true/false/1/0/yes/no)"),
    ]
    checked = _checked(typed, checks, v("customer_id"), "cc")
    # The newest CRM record of a customer wins; rows without updated_at lose to dated ones.
    return deduplicate(checked, [v("customer_id")], [f"{v('updated_at')} DESC NULLS LAST"], "cd")


def classify_orders(source: str, rules: ConformRules) -> str:
    currency, currency_check = _currency(rules)
    status = f"coalesce(lower({clean(col('status'))}), 'completed')"
    typed = _layer(source, ", ".join([
        "*",
        f"{clean(col('order_id'))} AS {v('order_id')}",
        f"{clean(col('customer_id'))} AS {v('customer_id')}",
        f"{parse_timestamp(col('order_ts'))} AS {v('order_ts')}",
        f"{status} AS {v('status')}",
        f"{currency} AS {v('currency')}",
        f"{parse_decimal(col('order_total'), 'DECIMAL(18, 2)')} AS {v('order_total')}",
    ]), "ot")
    typed = _layer(typed, f"*, CAST({v('order_ts')} AS DATE) AS {v('order_date')}", "ot2")
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("order_id", "customer_id", "order_ts")),
        *bad_key_checks(("order_id", "customer_id")),
        *_timestamp_checks("order_ts", rules),
        type_check("order_total", v("order_total"), "decimal"),
        negative_check("order_total", v("order_total"), QuarantineReason.NEGATIVE_AMOUNT),
        currency_check,
        Check(QuarantineReason.UNKNOWN_STATUS, f"NOT ({v('status')} IN ({lit_list(ORDER_STATUSES)}))",
              f"({shown('status', col('status'))} || {lit(' is not one of ' + ', '.join(ORDER_STATUSES))})"),
    ]
    return deduplicate(_checked(typed, checks, v("order_id"), "oc"), [v("order_id")], alias="od")


def classify_order_items(source: str, accepted_order_ids: str) -> str:
    """`accepted_order_ids`: a relation with one column `order_id`, the ids in silver.orders (any
    source) among the orders whose lines are classified here."""
    discount = parse_decimal(col("discount"), "DECIMAL(18, 2)")
    typed = _layer(source, ", ".join([
        "*",
        f"{clean(col('order_id'))} AS {v('order_id')}",
        f"{clean(col('product_id'))} AS {v('product_id')}",
        f"{parse_int(col('quantity'))} AS {v('quantity')}",
        f"{parse_decimal(col('unit_price'), 'DECIMAL(18, 4)')} AS {v('unit_price')}",
        f"{parse_int(col('line_number'))} AS _given_line_number",
        f"coalesce({discount}, CAST(0 AS DECIMAL(18, 2))) AS {v('discount')}",
        f"{discount} AS _parsed_discount",
    ]), "it")
    gross = f"CAST({v('quantity')} AS DECIMAL(18, 4)) * {v('unit_price')}"
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("order_id", "product_id", "quantity", "unit_price")),
        *bad_key_checks(("order_id", "product_id")),
        type_check("quantity", v("quantity"), "integer"),
        type_check("unit_price", v("unit_price"), "decimal"),
        type_check("line_number", "_given_line_number", "integer"),
        type_check("discount", "_parsed_discount", "decimal"),
        negative_check("quantity", v("quantity"), QuarantineReason.NEGATIVE_QUANTITY, strict=True),
        negative_check("unit_price", v("unit_price"), QuarantineReason.NEGATIVE_AMOUNT),
        negative_check("discount", v("discount"), QuarantineReason.NEGATIVE_AMOUNT),
        Check(QuarantineReason.DISCOUNT_EXCEEDS_LINE, f"({v('discount')} > {gross})",
              f"('discount=' || {as_text(v('discount'))} || ' exceeds quantity x unit_price = ' || "
              f"{as_text(f'round({gross}, 2)')})"),
    ]
    checked = _checked(typed, checks, v("order_id"), "ic")
    # A missing line_number is the product's position in its order (by product, then row hash), so
    # it depends on content only; an exact repeat gets the same position and is caught as duplicate.
    position = (f"dense_rank() OVER (PARTITION BY {v('order_id')}, _reason0 IS NULL, _given_line_number IS NULL "
                f"ORDER BY {v('product_id')} ASC NULLS LAST, _row_hash ASC NULLS LAST)")
    numbered = _layer(checked, f"*, coalesce(_given_line_number, {position}) AS {v('line_number')}, "
                               f"CAST(round({gross} - {v('discount')}, 2) AS DECIMAL(18, 2)) AS {v('line_amount')}",
                      "inm")
    deduped = deduplicate(numbered, [v("order_id"), v("line_number")], alias="idd",
                          out=("_dedup_reason", "_dedup_detail"))
    unknown = "i._dedup_reason IS NULL AND k._known_order_id IS NULL"
    order_id = f"i.{v('order_id')}"
    return (
        f"(SELECT i.*, CASE WHEN {unknown} THEN {lit(QuarantineReason.UNKNOWN_ORDER.value)} ELSE i._dedup_reason "
        f"END AS {REASON}, CASE WHEN {unknown} THEN {shown('order_id', order_id)} || ' is not in silver.orders' "
        f"ELSE i._dedup_detail END AS {DETAIL} FROM {deduped} AS i "
        f"LEFT JOIN (SELECT DISTINCT order_id AS _known_order_id FROM {accepted_order_ids}) AS k "
        f"ON {order_id} = k._known_order_id)"
    )


def classify_products(source: str, rules: ConformRules) -> str:
    currency, currency_check = _currency(rules)
    typed = _layer(source, ", ".join([
        "*",
        f"{clean(col('product_id'))} AS {v('product_id')}",
        f"{clean(col('name'))} AS {v('name')}",
        f"{clean(col('category'))} AS {v('category')}",
        f"{clean(col('brand'))} AS {v('brand')}",
        f"{parse_decimal(col('price'), 'DECIMAL(18, 4)')} AS {v('price')}",
        f"{currency} AS {v('currency')}",
    ]), "pt")
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("product_id",)),
        *bad_key_checks(("product_id",)),
        type_check("price", v("price"), "decimal"),
        negative_check("price", v("price"), QuarantineReason.NEGATIVE_AMOUNT),
        currency_check,
    ]
    return deduplicate(_checked(typed, checks, v("product_id"), "pc"), [v("product_id")], alias="pd")


def event_key(row_hash: str = "_row_hash") -> str:
    """The event id of a bronze events row: as landed, else the row's hash."""
    return f"coalesce({clean(col('event_id'))}, {row_hash})"


def classify_events(source: str, rules: ConformRules) -> str:
    typed = _layer(source, ", ".join([
        "*",
        f"{event_key()} AS {v('event_id')}",
        f"{parse_timestamp(col('event_ts'))} AS {v('event_ts')}",
        f"lower({clean(col('event_type'))}) AS {v('event_type')}",
        *[f"{clean(col(c))} AS {v(c)}" for c in ("customer_id", "anonymous_id", "session_id", "product_id",
                                                  "url", "referrer", "user_agent")],
        f"{token(col('ip'), rules.key, 'ip')} AS {v('ip_token')}",
    ]), "et")
    typed = _layer(typed, f"*, CAST({v('event_ts')} AS DATE) AS {v('event_date')}", "et2")
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing_key_checks(("event_ts", "event_type")),
        *bad_key_checks(("event_id", "customer_id")),
        *_timestamp_checks("event_ts", rules),
    ]
    return deduplicate(_checked(typed, checks, v("event_id"), "ec"), [v("event_id")], alias="edd")


def landed_text(entity_name: str, name: str, columns: Sequence[str]) -> str:
    """The trimmed text of contract column `name`, else of the first of its aliases (Entity.aliases)
    the bronze relation has, null when all are blank."""
    names = [name, *(a for a, target in ENTITIES[entity_name].aliases.items() if target == name and a in columns)]
    texts = [clean(col(n)) for n in names]
    return texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"


_RATE_KEY = ("rate_date", "base_currency", "currency")


def currency_rate_key(columns: Sequence[str]) -> str:
    """The business key of a bronze currency_rates row, 'YYYY-MM-DD|BASE|CURRENCY' (null when a part
    is missing or the date does not parse): the record key of its quarantine rows and what the
    incremental merge recomputes by (silver.TABLE_KEY builds the same text from silver's columns)."""
    date_text, base_text, currency_text = (landed_text("currency_rates", n, columns) for n in _RATE_KEY)
    return (f"(CAST({parse_date(date_text)} AS VARCHAR) || '|' || upper({base_text}) || '|' || "
            f"upper({currency_text}))")


def classify_currency_rates(source: str, rules: ConformRules, columns: Sequence[str]) -> str:
    """`columns`: the bronze relation's columns (which aliases it has). One rate per row; the key is
    (rate_date, base_currency, currency), and of two rows with one key the later file wins (the
    usual deduplication)."""
    text = {n: landed_text("currency_rates", n, columns) for n in ("rate_date", "currency", "rate", "base_currency")}
    typed = _layer(source, ", ".join(["*", *(f"{t} AS {ident('_text_' + n)}" for n, t in text.items())]), "rt")
    raw = {n: ident("_text_" + n) for n in text}
    typed = _layer(typed, ", ".join([
        "*",
        f"{parse_date(raw['rate_date'])} AS {v('rate_date')}",
        f"upper({raw['base_currency']}) AS {v('base_currency')}",
        f"upper({raw['currency']}) AS {v('currency')}",
        f"{parse_decimal(raw['rate'], 'DOUBLE')} AS {v('rate')}",
    ]), "rt2")
    names = ("rate_date", "currency", "rate", "base_currency")
    missing = [
        # A row with none of them is most likely the ECB's wide layout (a column per currency): say so.
        Check(QuarantineReason.MISSING_KEY, " AND ".join(f"{raw[n]} IS NULL" for n in names),
              lit("none of rate_date, currency, rate, base_currency: one rate per row is read (a column per "
                  "currency, the ECB's eurofxref layout, is not; land the ECB Data Portal's CSV instead)")),
        *(Check(QuarantineReason.MISSING_KEY, f"{raw[n]} IS NULL", lit(f"missing {n}")) for n in names),
    ]
    as_timestamp = f"CAST({v('rate_date')} AS TIMESTAMPTZ)"
    checks = [
        malformed_check(CORRUPT_COLUMN),
        *missing,
        Check(QuarantineReason.UNPARSABLE_DATE, f"({raw['rate_date']} IS NOT NULL AND {v('rate_date')} IS NULL)",
              f"({shown('rate_date', raw['rate_date'])} || ' is not a date YYYY-MM-DD')"),
        plausible_check("rate_date", as_timestamp, rules.earliest.isoformat(), rules.latest.isoformat(),
                        raw=raw["rate_date"]),
        Check(QuarantineReason.BAD_TYPE, f"({raw['rate']} IS NOT NULL AND {v('rate')} IS NULL)",
              f"({shown('rate', raw['rate'])} || ' is not a decimal number')"),
        negative_check("rate", v("rate"), QuarantineReason.NEGATIVE_AMOUNT, strict=True),
        currency_check("currency", v("currency"), raw["currency"], rules),
        currency_check("base_currency", v("base_currency"), raw["base_currency"], rules),
    ]
    checked = _checked(typed, checks, currency_rate_key(columns), "rc")
    return deduplicate(checked, [v(n) for n in _RATE_KEY], alias="rd")


def raw_columns(columns: Sequence[str]) -> list[str]:
    """The raw (landed) columns among a bronze relation's columns: lineage and partition columns excluded."""
    from rfmlake.ingest.bronze import BRONZE_LINEAGE, PARTITION_BY

    return [c for c in columns if c not in BRONZE_LINEAGE and c not in PARTITION_BY]


__all__ = [
    "ConformRules", "accepted", "classify_currency_rates", "classify_customers", "classify_events",
    "classify_order_items", "classify_orders", "classify_products", "currency_rate_key", "deduplicate", "event_key",
    "quarantined", "raw_columns", "silver_columns", "silver_types",
]
