"""Landing -> bronze -> silver on the crafted landing folder (see ingest_landing_fixture.py), on
the local engine (DuckDB); test_ingest_engines.py runs the same landing on Spark and compares."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from ingest_landing_fixture import CLEAR_PII  # type: ignore[import-not-found]

from rfmlake.contract.entities import ENTITIES, LINEAGE_COLUMNS, SILVER_TABLES, QuarantineReason
from rfmlake.ingest.pii import tokenize
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect

KEY = b"test-key-not-a-secret"
PARTITION_COLUMNS = ("_load_date", "_file")


def _rows(lake: Lake, zone: str, table: str, where: str = "true") -> list[dict]:
    con = connect(lake)
    try:
        cursor = con.execute(f"SELECT * FROM {zone}.{table} WHERE {where}")
        names = [d[0] for d in cursor.description]
        return [{k: v for k, v in zip(names, row, strict=True) if k not in PARTITION_COLUMNS}
                for row in cursor.fetchall()]
    finally:
        con.close()


def _by(rows: list[dict], column: str) -> dict:
    return {r[column]: r for r in rows}


def test_every_silver_table_has_the_contract_schema(ingested) -> None:  # type: ignore[no-untyped-def]
    from rfmlake.lake.glue import hive_type

    lake = ingested.ctx.lake
    for table, columns in SILVER_TABLES.items():
        ref = lake.require("silver", table)
        schema = lake.table_schema(ref)
        actual = [(f.name, hive_type(f.type)) for f in schema if f.name not in PARTITION_COLUMNS]
        expected = [(name, type_name) for name, type_name, _ in (*columns, *LINEAGE_COLUMNS)]
        assert actual == expected, table
        for data_file in lake.files(ref):  # what Spark, Athena and DuckDB read: the files' own types
            file_schema = pq.read_schema(data_file)
            assert [(f.name, hive_type(f.type)) for f in file_schema] == expected, (table, data_file)
        assert lake.count_rows(ref) > 0, table
    for name in ENTITIES:
        assert lake.current("bronze", name) is not None


def test_every_reason_is_produced_with_its_detail(ingested) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(ingested.ctx.lake, "bronze", "quarantine")
    found = {(r["entity"], r["reason"], r["detail"]) for r in rows}
    expected = {
        ("customers", "malformed_record", "record could not be read as a row: {not json"),
        ("customers", "missing_key", "missing customer_id"),
        ("customers", "unparsable_date", "created_at='yesterday'"),
        ("customers", "bad_type", "marketing_opt_in='maybe' is not a valid boolean (true/false/1/0/yes/no)"),
        ("customers", "duplicate", "same row as kept from customers/crm2.jsonl (key c1)"),
        ("customers", "conflicting_duplicate", "key c2 has other content; kept the row from customers/crm2.jsonl"),
        ("orders", "unparsable_date", "order_ts='not-a-date'"),
        ("orders", "bad_type", "order_total='abc' is not a valid decimal"),
        ("orders", "negative_amount", "order_total=-5.00"),
        ("orders", "unknown_status", "status='shipped' is not one of completed, pending, cancelled, returned"),
        ("orders", "conflicting_duplicate", "key o8 has other content; kept the row from orders/orders2.parquet"),
        ("orders", "duplicate", "same row as kept from orders/orders2.parquet (key o2)"),
        ("order_items", "negative_quantity", "quantity=-2"),
        ("order_items", "negative_amount", "unit_price=-1.0000"),
        ("order_items", "bad_type", "quantity='two' is not a valid integer"),
        ("order_items", "unknown_order", "order_id='o99' is not in silver.orders"),
        ("order_items", "unknown_order", "order_id='o3' is not in silver.orders"),
        ("order_items", "duplicate", "same row as kept from order_items/items.jsonl (key o1|1)"),
        ("order_items", "missing_key", "missing product_id"),
        ("products", "unknown_currency", "currency='ABC' is not an ISO 4217 currency code"),
        ("orders", "unknown_currency", "currency='XYZ' is not an ISO 4217 currency code"),
        ("currency_rates", "unparsable_date", "rate_date='2024-01' is not a date YYYY-MM-DD"),
        ("currency_rates", "conflicting_duplicate",
         "key 2024-01-05|EUR|USD has other content; kept the row from currency_rates/rates.jsonl"),
        ("currency_rates", "duplicate", "same row as kept from currency_rates/rates.jsonl (key 2024-01-08|EUR|SEK)"),
        ("currency_rates", "negative_amount", "rate=0.0"),
        ("currency_rates", "unknown_currency", "currency='XYZ' is not an ISO 4217 currency code"),
        ("currency_rates", "unknown_currency", "base_currency='EURO' is not an ISO 4217 currency code"),
        ("currency_rates", "bad_type", "rate='n/a' is not a decimal number"),
        ("currency_rates", "missing_key", "missing currency"),
        ("currency_rates", "implausible_date", "rate_date='2099-01-01' is outside the plausible window 1970-01-01 "
         "to " + ingested.report.plausible_until),
        ("currency_rates", "missing_key", "none of rate_date, currency, rate, base_currency: one rate per row is read "
         "(a column per currency, the ECB's eurofxref layout, is not; land the ECB Data Portal's CSV instead)"),
        ("events", "missing_key", "missing event_type"),
        ("events", "unparsable_date", "event_ts='05/01/2024'"),
        ("access_logs", "unparsable_line", "not Combined Log Format: this is not a log line"),
        ("aws_rfm_guidance", "unparsable_date", "date='someday'"),
        ("aws_rfm_guidance", "negative_quantity", "quantity=0"),
        ("orders", "bad_key", "order_id='o/9' is not an id: 1 to 128 letters, digits or . _ : @ + = ~ # -"),
        ("orders", "implausible_date", "order_ts='9999-12-31' is outside the plausible window 1970-01-01 to "
         + ingested.report.plausible_until),
        ("orders", "implausible_date", "order_ts='0001-01-01' is outside the plausible window 1970-01-01 to "
         + ingested.report.plausible_until),
        ("events", "implausible_date", "event_ts='2030-01-01T00:00:00Z' is outside the plausible window 1970-01-01 "
         "to " + ingested.report.plausible_until),
        ("events", "bad_key", "customer_id='\U0001F4A5' is not an id: 1 to 128 letters, digits or . _ : @ + = ~ # -"),
        ("order_items", "discount_exceeds_line", "discount=5.00 exceeds quantity x unit_price = 1.00"),
    }
    assert expected <= found, expected - found
    assert {QuarantineReason(r["reason"]) for r in rows} == set(QuarantineReason) - {QuarantineReason.ERASED_CUSTOMER}
    malformed_csv = [r for r in rows if r["reason"] == "malformed_record" and r["source_file"] == "customers/crm.csv"]
    assert len(malformed_csv) == 1 and malformed_csv[0]["detail"].startswith("record could not be read as a row: c6,")
    raw = json.loads(next(r["raw"] for r in rows if r["detail"] == "quantity=-2"))
    assert raw == {"order_id": "o1", "product_id": "p3", "quantity": "-2", "unit_price": "1", "line_number": None,
                   "discount": None, "_corrupt_record": None}


def test_reconciliation_balances_per_file(ingested) -> None:  # type: ignore[no-untyped-def]
    rows = _rows(ingested.ctx.lake, "silver", "ingest_reconciliation")
    by_file = {r["source_file"]: (r["rows_in"], r["rows_accepted"], r["rows_quarantined"]) for r in rows}
    assert by_file == {
        "access_logs/web-1-2024-01-05.log": (3, 2, 1),
        "aws_rfm_guidance/guidance.csv": (6, 4, 2),
        "customers/crm.csv": (6, 0, 6),
        "currency_rates/ecb.csv": (4, 2, 2),
        "currency_rates/eurofxref.csv": (1, 0, 1),
        "currency_rates/rates.jsonl": (10, 3, 7),
        "customers/crm2.jsonl": (3, 2, 1),
        "events/2024/events.jsonl": (7, 2, 5),
        "order_items/items.jsonl": (12, 3, 9),
        "orders/orders.csv": (13, 2, 11),
        "orders/orders2.parquet": (2, 2, 0),
        "products/products.csv": (5, 2, 3),
    }
    report = ingested.report
    assert [(r.source_file, r.rows_in) for r in report.reconciliation] == sorted(
        (f, v[0]) for f, v in by_file.items()
    )
    quarantine = _rows(ingested.ctx.lake, "bronze", "quarantine")
    assert sum(report.quarantine_counts.values()) == len(quarantine)
    assert report.quarantine_counts[("order_items", "unknown_order")] == 2
    assert report.table_rows["orders"] == 6 and report.table_rows["currency_rates"] == 5
    assert report.to_dict()["rows_in"] == 72


def test_case_insensitive_columns_and_extra_column_kept_in_bronze(ingested) -> None:  # type: ignore[no-untyped-def]
    bronze = _rows(ingested.ctx.lake, "bronze", "customers")
    assert "loyalty_tier" in bronze[0] and "customer_id" in bronze[0]
    assert {r["loyalty_tier"] for r in bronze} >= {"gold"}
    assert {"_source_file", "_loaded_at", "_row_hash", "_corrupt_record"} <= set(bronze[0])
    silver = _by(_rows(ingested.ctx.lake, "silver", "customers"), "customer_id")
    assert silver["c1"]["country"] == "GB"  # from CUSTOMER_ID (JSON) and Customer_ID (CSV)
    assert "loyalty_tier" not in silver["c1"]


def test_same_row_hashes_alike_across_formats(ingested) -> None:  # type: ignore[no-untyped-def]
    lake = ingested.ctx.lake
    customers = _rows(lake, "bronze", "customers", "customer_id = 'c1'")
    assert len({r["_row_hash"] for r in customers}) == 1 and len(customers) == 2
    orders = _rows(lake, "bronze", "orders", "order_id = 'o2'")
    assert {r["_source_file"] for r in orders} == {"orders/orders.csv", "orders/orders2.parquet"}
    assert len({r["_row_hash"] for r in orders}) == 1


def test_timestamps_are_utc_and_values_typed(ingested) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, date, datetime
    from decimal import Decimal

    lake = ingested.ctx.lake
    orders = _by(_rows(lake, "silver", "orders"), "order_id")
    assert orders["o1"]["order_ts"] == datetime(2024, 1, 5, 8, 0, tzinfo=UTC)  # +02:00 -> UTC
    assert orders["o1"]["currency"] == "USD" and orders["o1"]["status"] == "completed"
    assert orders["o2"]["status"] == "pending" and orders["o2"]["currency"] == "EUR"
    assert orders["g-o"]["order_ts"] == datetime(2024, 1, 9, tzinfo=UTC) and orders["g-o"]["order_date"] == date(2024, 1, 9)
    customers = _by(_rows(lake, "silver", "customers"), "customer_id")
    assert customers["c1"]["created_at"] == datetime(2023, 1, 1, 8, 0, tzinfo=UTC)
    assert customers["c1"]["marketing_opt_in"] is True
    events = _rows(lake, "silver", "events")
    e1 = _by(events, "event_id")["e1"]
    assert e1["event_ts"] == datetime(2024, 1, 5, 9, 0, tzinfo=UTC) and e1["event_type"] == "page_view"
    logs = sorted(_rows(lake, "silver", "access_logs"), key=lambda r: r["request_ts"])
    assert logs[0]["request_ts"] == datetime(2000, 10, 10, 20, 55, 36, tzinfo=UTC)  # -0700 -> UTC
    assert logs[0]["status"] == 200 and logs[0]["bytes_sent"] == 2326 and logs[0]["method"] == "GET"
    assert logs[1]["bytes_sent"] == 0 and logs[1]["referrer"] is None and logs[1]["remote_user_token"] is None
    items = {(r["order_id"], r["line_number"]): r for r in _rows(lake, "silver", "order_items")}
    assert items[("o1", 1)]["product_id"] == "p1" and items[("o1", 1)]["line_amount"] == Decimal("6.00")
    assert items[("o1", 2)]["product_id"] == "p2" and items[("o1", 2)]["discount"] == Decimal("0.00")


def test_currency_rates_are_typed_from_either_layout_and_the_later_file_wins(ingested) -> None:  # type: ignore[no-untyped-def]
    from datetime import date

    rows = _rows(ingested.ctx.lake, "silver", "currency_rates")
    rates = {(r["rate_date"], r["base_currency"], r["currency"]): (r["rate"], r["_source_file"]) for r in rows}
    assert rates == {
        # the ECB Data Portal's columns (TIME_PERIOD, CURRENCY_DENOM, OBS_VALUE) read as the contract's
        (date(2024, 1, 4), "EUR", "USD"): (1.0942, "currency_rates/ecb.csv"),
        (date(2024, 1, 5), "EUR", "GBP"): (0.86, "currency_rates/ecb.csv"),
        # the same key in two files: the lexicographically later file's row (codes upper-cased, trimmed)
        (date(2024, 1, 5), "EUR", "USD"): (1.0925, "currency_rates/rates.jsonl"),
        (date(2024, 1, 8), "EUR", "CHF"): (0.9301, "currency_rates/rates.jsonl"),
        (date(2024, 1, 8), "EUR", "SEK"): (11.02, "currency_rates/rates.jsonl"),
    }
    bronze = _rows(ingested.ctx.lake, "bronze", "currency_rates", "_source_file = 'currency_rates/ecb.csv'")
    assert {r["exr_type"] for r in bronze} == {"SP00"}  # the export's other columns stay in bronze


def test_aws_guidance_becomes_orders_items_events_and_customers(ingested) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime
    from decimal import Decimal

    lake = ingested.ctx.lake
    orders = [r for r in _rows(lake, "silver", "orders") if r["order_id"].startswith("awsrfm-")]
    g1 = next(r for r in orders if r["customer_id"] == "g1")
    assert g1["order_ts"] == datetime(2022, 9, 19, 6, 46, 1, tzinfo=UTC)  # +0530 -> UTC
    assert (g1["status"], g1["currency"], g1["order_total"]) == ("completed", "EUR", None)
    lines = sorted(
        (r["line_number"], r["product_id"], r["line_amount"])
        for r in _rows(lake, "silver", "order_items")
        if r["order_id"] == g1["order_id"]
    )
    assert lines == [(1, "P100", Decimal("21.00")), (2, "P101", Decimal("5.00"))]
    events = [r for r in _rows(lake, "silver", "events") if r["customer_id"] == "g2"]
    assert [(e["event_type"], e["product_id"]) for e in events] == [("product_view", "P100")]
    customers = _by(_rows(lake, "silver", "customers"), "customer_id")
    assert customers["g1"]["email_token"] == tokenize("G1@Mail.com", KEY, "email")
    assert customers["g2"]["phone_token"] == tokenize("+33 6 12 34 56 78", KEY, "phone")
    assert customers["g2"]["has_email"] is False and customers["g2"]["country"] == "FR"
    assert "g3" not in customers  # its only rows were quarantined
    assert customers["c1"]["_source_file"].startswith("customers/")  # CRM wins over guidance


def test_no_clear_pii_in_silver_and_tokens_match_python(ingested) -> None:  # type: ignore[no-untyped-def]
    lake = ingested.ctx.lake
    silver_dir = lake.root / "silver"
    values: list[str] = []
    for path in silver_dir.rglob("*.parquet"):
        for column in pq.read_table(path).to_pylist():
            values.extend(str(v) for v in column.values() if v is not None)
    assert values
    text = "\n".join(values).lower()
    for clear in CLEAR_PII:
        assert clear.lower() not in text, clear
    customers = _by(_rows(lake, "silver", "customers"), "customer_id")
    c1 = customers["c1"]
    assert c1["email_token"] == tokenize(" Alice@Example.com ", KEY, "email")
    assert c1["phone_token"] == tokenize("+442012345678", KEY, "phone")
    assert c1["first_name_token"] == tokenize("alice", KEY, "name")
    assert c1["last_name_token"] == tokenize("SMITH ", KEY, "name")
    assert (c1["has_email"], c1["has_phone"]) == (True, True)
    e1 = _by(_rows(lake, "silver", "events"), "event_id")["e1"]
    assert e1["ip_token"] == tokenize("203.0.113.9", KEY, "ip")
    logs = _rows(lake, "silver", "access_logs")
    assert {r["remote_user_token"] for r in logs} == {tokenize("frank", KEY, "user"), None}


@pytest.mark.parametrize(
    "value,kind",
    [(" Mixed@Case.COM\t", "email"), ("+1 (555) 010-9999", "phone"), ("0044 20", "phone"), ("  Zoë  ", "name"),
     ("2001:db8::1", "ip"), ("", "email"), (None, "name"), ("x" * 300, "name"), ("\u00a0nbsp\u00a0", "name")],
)
def test_sql_token_equals_python_tokenize(value, kind) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    from rfmlake.ingest.sql import lit, token

    for key in (KEY, b"k" * 100):
        literal = "CAST(NULL AS VARCHAR)" if value is None else lit(value)
        assert duckdb.sql(f"SELECT {token(literal, key, kind)}").fetchone()[0] == tokenize(value, key, kind)


def test_dedup_winner_is_deterministic(ingested) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    import duckdb

    from rfmlake.ingest.conform import accepted, classify_orders
    from rfmlake.ingest.silver import conform_rules
    from rfmlake.lake.tables import parquet_scan

    lake = ingested.ctx.lake
    orders = _by(_rows(lake, "silver", "orders"), "order_id")
    assert orders["o8"]["order_total"] == Decimal("2.00")  # orders2.parquet sorts after orders.csv
    customers = _by(_rows(lake, "silver", "customers"), "customer_id")
    assert customers["c2"]["email_token"] == tokenize("bob@new.com", KEY, "email")  # newest updated_at
    rules = conform_rules(ingested.ctx)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    results = []
    for order in ("_row_hash", "_source_file DESC", "random()"):
        con.execute(f"CREATE OR REPLACE TABLE bronze_orders AS SELECT * FROM {parquet_scan(lake.require('bronze', 'orders'))} "
                    f"ORDER BY {order}")
        results.append(sorted(con.execute(accepted(classify_orders("bronze_orders", rules), "orders")).fetchall(),
                              key=repr))
    assert results[0] == results[1] == results[2]
    assert len(results[0]) == 4
