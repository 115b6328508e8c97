"""The one-engine reference for `make bench`: the same landing -> silver -> R/F/M work as the
pipeline's ingest stages and RFM features, written as one plain DuckDB script.

Honest on purpose (issue 13): it reads every entity in every format the generator lands, checks
each value's shape before typing it (ISO timestamps, decimals, integers), keeps the newest record
per key with a deterministic tie-break, hashes every PII value with HMAC-SHA256 (the same two
SHA-256 passes per value), computes a SHA-256 row hash per landed row, writes silver Parquet
(zstd) and computes recency, frequency and monetary per customer. It does not keep a quarantine,
a reconciliation, a manifest or lineage partitions, and it is not incremental: that is what the
pipeline adds. Run it as a process of its own: `python bench/reference_duckdb.py LANDING OUT`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

KEY = b"bench-key-not-a-secret"
ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$"
DECIMAL = r"^[+-]?(\d{1,15}(\.\d*)?|\.\d+)$"
INTEGER = r"^[+-]?\d{1,18}$"


def pads(key: bytes) -> tuple[str, str]:
    key = key.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()


INNER, OUTER = pads(KEY)


def hmac(value: str, normalized: str | None = None) -> str:
    text = normalized or f"nullif(lower(trim({value})), '')"
    return (f"CASE WHEN {text} IS NOT NULL THEN sha256(unhex('{OUTER}') || "
            f"unhex(sha256(unhex('{INNER}') || encode({text})))) END")


def ts(value: str) -> str:
    return f"CASE WHEN regexp_matches(trim({value}), '{ISO}') THEN TRY_CAST(trim({value}) AS TIMESTAMPTZ) END"


def dec(value: str, type_name: str) -> str:
    return f"CASE WHEN regexp_matches(trim({value}), '{DECIMAL}') THEN TRY_CAST(trim({value}) AS {type_name}) END"


def integer(value: str) -> str:
    return f"CASE WHEN regexp_matches(trim({value}), '{INTEGER}') THEN TRY_CAST(trim({value}) AS INTEGER) END"


def row_hash(columns: list[str]) -> str:
    return f"sha256(concat_ws(chr(31), {', '.join(f'coalesce(CAST({c} AS VARCHAR), {chr(39)}{chr(39)})' for c in columns)}))"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("landing", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    landing, out = args.landing, args.out
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET preserve_insertion_order = false")
    started = time.perf_counter()

    def files(entity: str, pattern: str) -> str:
        found = sorted(str(p) for p in (landing / entity).glob(pattern))
        return "[" + ", ".join(f"'{f}'" for f in found) + "]" if found else ""

    def write(name: str, query: str) -> None:
        con.execute(f"COPY ({query}) TO '{out / name}.parquet' (FORMAT parquet, COMPRESSION zstd)")

    # customers: CSV; newest updated_at wins, PII tokenized
    write("customers", f"""
        WITH raw AS (SELECT * FROM read_csv({files('customers', '*.csv')}, all_varchar = true, header = true,
                                            union_by_name = true)),
        typed AS (
            SELECT trim(customer_id) AS customer_id,
                   {hmac('email')} AS email_token,
                   {hmac('phone', "nullif(regexp_replace(phone, '[^0-9+]', '', 'g'), '')")} AS phone_token,
                   {hmac('first_name')} AS first_name_token, {hmac('last_name')} AS last_name_token,
                   upper(trim(country)) AS country, trim(city) AS city, trim(postal_code) AS postal_code,
                   {ts('created_at')} AS created_at, {ts('updated_at')} AS updated_at,
                   lower(trim(marketing_opt_in)) IN ('true', '1', 'yes') AS marketing_opt_in,
                   {row_hash(['customer_id', 'email', 'phone', 'first_name', 'last_name', 'country', 'city',
                              'postal_code', 'created_at', 'updated_at', 'marketing_opt_in'])} AS _row_hash
            FROM raw WHERE nullif(trim(customer_id), '') IS NOT NULL)
        SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY customer_id
               ORDER BY updated_at DESC NULLS LAST, _row_hash DESC) AS rn FROM typed) WHERE rn = 1""")

    # The AWS RFM guidance CSV: PURCHASED rows are order lines, one order per customer and date.
    guidance = files("aws_rfm_guidance", "*.csv")
    if guidance:
        con.execute(f"""
            CREATE TABLE guidance AS
            SELECT 'awsrfm-' || substring(sha256(CustomerID || '|' || trim(Date)), 1, 16) AS order_id,
                   CustomerID AS customer_id, ProductCode AS product_id,
                   {integer('Quantity')} AS quantity, {dec('UnitPrice', 'DECIMAL(18, 4)')} AS unit_price,
                   strptime(regexp_replace(trim(Date), '^[A-Za-z]{{3}}, ', ''), '%d %b %Y %H:%M:%S %z') AS order_ts
            FROM read_csv({guidance}, all_varchar = true, header = true)
            WHERE upper(trim(EventName)) = 'PURCHASED'""")
    else:
        con.execute("CREATE TABLE guidance (order_id VARCHAR, customer_id VARCHAR, product_id VARCHAR, "
                    "quantity INTEGER, unit_price DECIMAL(18, 4), order_ts TIMESTAMPTZ)")

    # orders: CSV history + JSON Lines (+ the guidance file's); one row per order id
    write("orders", f"""
        WITH raw AS (
            SELECT order_id, customer_id, order_ts, status, currency, order_total
            FROM read_csv({files('orders', '*.csv')}, all_varchar = true, header = true, union_by_name = true)
            UNION ALL
            SELECT order_id, customer_id, order_ts, status, currency, CAST(order_total AS VARCHAR)
            FROM read_json({files('orders', '*.jsonl')}, format = 'newline_delimited',
                           columns = {{order_id: 'VARCHAR', customer_id: 'VARCHAR', order_ts: 'VARCHAR',
                                      status: 'VARCHAR', currency: 'VARCHAR', order_total: 'VARCHAR'}})
            UNION ALL
            SELECT DISTINCT order_id, customer_id, strftime(min(order_ts) OVER (PARTITION BY order_id),
                   '%Y-%m-%dT%H:%M:%SZ'), 'completed', 'EUR', NULL FROM guidance),
        typed AS (
            SELECT trim(order_id) AS order_id, trim(customer_id) AS customer_id, {ts('order_ts')} AS order_ts,
                   coalesce(lower(nullif(trim(status), '')), 'completed') AS status,
                   coalesce(upper(nullif(trim(currency), '')), 'EUR') AS currency,
                   {dec('order_total', 'DECIMAL(18, 2)')} AS order_total,
                   {row_hash(['order_id', 'customer_id', 'order_ts', 'status', 'currency', 'order_total'])} AS _row_hash
            FROM raw)
        SELECT * EXCLUDE (rn), CAST(order_ts AS DATE) AS order_date FROM (
            SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY _row_hash DESC) AS rn FROM typed
            WHERE order_id IS NOT NULL AND customer_id IS NOT NULL AND order_ts IS NOT NULL) WHERE rn = 1""")

    items_csv = files("order_items", "*.csv")
    csv_part = (f"UNION ALL SELECT order_id, product_id, quantity, unit_price, line_number, discount FROM "
                f"read_csv({items_csv}, all_varchar = true, header = true, union_by_name = true)") if items_csv else ""
    write("order_items", f"""
        WITH raw AS (
            SELECT CAST(order_id AS VARCHAR) AS order_id, CAST(product_id AS VARCHAR) AS product_id,
                   CAST(quantity AS VARCHAR) AS quantity, CAST(unit_price AS VARCHAR) AS unit_price,
                   CAST(line_number AS VARCHAR) AS line_number, CAST(discount AS VARCHAR) AS discount
            FROM read_parquet({files('order_items', '*.parquet')}) {csv_part}
            UNION ALL
            SELECT order_id, product_id, CAST(quantity AS VARCHAR), CAST(unit_price AS VARCHAR),
                   CAST(row_number() OVER (PARTITION BY order_id ORDER BY product_id) AS VARCHAR), '0'
            FROM guidance),
        typed AS (
            SELECT trim(order_id) AS order_id, {integer('line_number')} AS line_number, trim(product_id) AS product_id,
                   {integer('quantity')} AS quantity, {dec('unit_price', 'DECIMAL(18, 4)')} AS unit_price,
                   coalesce({dec('discount', 'DECIMAL(18, 2)')}, 0) AS discount,
                   {row_hash(['order_id', 'product_id', 'quantity', 'unit_price', 'line_number', 'discount'])} AS _row_hash
            FROM raw)
        SELECT * EXCLUDE (rn), CAST(round(quantity * unit_price - discount, 2) AS DECIMAL(18, 2)) AS line_amount
        FROM (SELECT *, row_number() OVER (PARTITION BY order_id, line_number ORDER BY _row_hash DESC) AS rn
              FROM typed WHERE quantity > 0 AND unit_price >= 0) WHERE rn = 1
          AND order_id IN (SELECT order_id FROM '{out / 'orders.parquet'}')""")

    write("products", f"""
        SELECT * EXCLUDE (rn) FROM (
            SELECT trim(product_id) AS product_id, trim(name) AS name, trim(category) AS category, trim(brand) AS brand,
                   {dec('price', 'DECIMAL(18, 4)')} AS price, upper(trim(currency)) AS currency,
                   row_number() OVER (PARTITION BY trim(product_id) ORDER BY name) AS rn
            FROM read_csv({files('products', '*.csv')}, all_varchar = true, header = true)) WHERE rn = 1""")

    write("events", f"""
        WITH raw AS (SELECT * FROM read_json({files('events', '*.jsonl')}, format = 'newline_delimited',
                                             union_by_name = true)),
        typed AS (
            SELECT CAST(event_id AS VARCHAR) AS event_id, {ts('CAST(event_ts AS VARCHAR)')} AS event_ts,
                   lower(event_type) AS event_type, customer_id, anonymous_id, session_id, product_id, url,
                   referrer, user_agent, {hmac('ip')} AS ip_token,
                   {row_hash(['event_id', 'event_ts', 'event_type', 'customer_id', 'anonymous_id', 'session_id',
                              'product_id', 'url', 'referrer', 'user_agent', 'ip'])} AS _row_hash
            FROM raw)
        SELECT * EXCLUDE (rn), CAST(event_ts AS DATE) AS event_date FROM (
            SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY _row_hash DESC) AS rn FROM typed
            WHERE event_ts IS NOT NULL) WHERE rn = 1""")

    clf = r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-)'
    write("access_logs", f"""
        SELECT {hmac(f"regexp_extract(line, '{clf}', 1)")} AS ip_token,
               strptime(regexp_extract(line, '{clf}', 4), '%d/%b/%Y:%H:%M:%S %z') AS request_ts,
               regexp_extract(line, '{clf}', 5) AS method, regexp_extract(line, '{clf}', 6) AS path,
               TRY_CAST(regexp_extract(line, '{clf}', 8) AS INTEGER) AS status,
               sha256(line) AS _row_hash
        FROM read_csv({files('access_logs', '*.log')}, columns = {{'line': 'VARCHAR'}}, header = false,
                      delim = '\x1e\x1f', quote = '', escape = '', auto_detect = false)
        WHERE regexp_matches(line, '{clf}')""")

    # Exchange rates as landed (rate_date, currency, rate, base EUR: the generator's): each order is
    # converted with the latest rate on or before its date (ASOF JOIN: this reference is DuckDB only),
    # EUR orders as they are, at the pipeline's precision (1 / rate at 12 decimals, cents per order).
    rate_files = files("currency_rates", "*.csv")
    rates = (f"SELECT CAST(rate_date AS DATE) AS rate_date, upper(trim(currency)) AS currency, "
             f"CAST(1 / CAST(rate AS DOUBLE) AS DECIMAL(24, 12)) AS rate "
             f"FROM read_csv({rate_files}, all_varchar = true, header = true) "
             f"WHERE {dec('rate', 'DOUBLE')} > 0 AND upper(trim(base_currency)) = 'EUR'") if rate_files else (
        "SELECT CAST(NULL AS DATE) AS rate_date, CAST(NULL AS VARCHAR) AS currency, "
        "CAST(NULL AS DECIMAL(24, 12)) AS rate WHERE false")
    as_of = con.execute(f"SELECT max(order_date) + 1 FROM '{out / 'orders.parquet'}'").fetchone()[0]
    write("rfm", f"""
        WITH rates AS ({rates}),
        lines AS (SELECT order_id, sum(line_amount) AS amount FROM '{out / 'order_items.parquet'}' GROUP BY 1),
        orders AS (SELECT * FROM '{out / 'orders.parquet'}' WHERE status = 'completed' AND order_date < DATE '{as_of}'),
        counted AS (
            SELECT o.customer_id, o.order_id, o.order_date,
                   round(coalesce(l.amount, o.order_total)
                         * CASE WHEN o.currency = 'EUR' THEN CAST(1 AS DECIMAL(24, 12)) ELSE r.rate END, 2) AS amount
            FROM orders o LEFT JOIN lines l USING (order_id)
            ASOF LEFT JOIN rates r ON r.currency = o.currency AND o.order_date >= r.rate_date)
        SELECT customer_id, date_diff('day', max(order_date), DATE '{as_of}') AS recency_days,
               count(DISTINCT order_id) AS frequency, round(sum(amount), 2) AS monetary
        FROM counted GROUP BY customer_id""")
    seconds = time.perf_counter() - started
    customers = con.execute(f"SELECT count(*) FROM '{out / 'rfm.parquet'}'").fetchone()[0]
    print(f"reference: {customers} customers with R/F/M as of {as_of} in {seconds:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
