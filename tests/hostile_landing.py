"""Hostile landing files (issue 15): what a careless or hostile source system delivers, generated as
bytes, each with what ingestion must make of it.

Every case is one file beside a small valid landing (`write_base`). Its expectation is either
`Refused` (the run stops before any table changes, with a message naming the file) or `Quarantined`
(the run goes on: the file's rows are accepted or quarantined with the listed reasons, its
reconciliation row balances, and the `kept` values reach silver unchanged). Ids are unique per case,
so the quarantine-expecting cases can share one landing and one run.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

BASE: dict[str, str] = {
    "customers/base.csv": "customer_id,email,country,marketing_opt_in\nb-c1,one@example.org,FR,true\n"
                          "b-c2,two@example.org,DE,false\n",
    "orders/base.csv": "order_id,customer_id,order_ts,status,currency,order_total\n"
                       "b-o1,b-c1,2026-03-01T10:00:00Z,completed,EUR,12.50\nb-o2,b-c2,2026-03-02,completed,EUR,8.00\n",
    "order_items/base.csv": "order_id,product_id,quantity,unit_price,discount\nb-o1,b-p1,1,12.50,0\n"
                            "b-o2,b-p1,2,4.00,0\n",
    "products/base.csv": "product_id,name,price,currency\nb-p1,Mug,4.00,EUR\n",
    "events/base.jsonl": json.dumps({"event_id": "b-e1", "event_ts": "2026-03-01T09:00:00Z",
                                     "event_type": "page_view", "customer_id": "b-c1"}) + "\n",
    "access_logs/base.log": '192.0.2.1 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8"\n',
    "aws_rfm_guidance/base.csv": "EventName,ProductCode,UnitPrice,Quantity,CustomerID,Date\n"
                                 'PURCHASED,b-P1,3.00,1,b-g1,"Sun, 01 Mar 2026 10:00:00 +0000"\n',
}


def write_base(landing: Path) -> None:
    for relative, text in BASE.items():
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass(frozen=True)
class Refused:
    """The run stops, naming the file, with this text in its message (whitespace folded)."""

    says: str


@dataclass(frozen=True)
class Quarantined:
    """The file's rows: `accepted` reach silver, the others are quarantined with `reasons`
    (reason -> rows); `kept` lists (silver table, key column, key, column, value) that must arrive
    exactly as landed."""

    accepted: int
    reasons: dict[str, int] = field(default_factory=dict)
    kept: tuple[tuple[str, str, str, str, Any], ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)  # a run of its own with these settings

    @property
    def rows_in(self) -> int:
        return self.accepted + sum(self.reasons.values())


@dataclass(frozen=True)
class Hostile:
    path: str  # relative to the landing folder
    what: str
    build: Callable[[], bytes]
    expect: Refused | Quarantined

    @property
    def entity(self) -> str:
        return self.path.split("/", 1)[0]


def _csv(*lines: str, newline: str = "\n", encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: newline.join(lines).encode(encoding) + newline.encode(encoding)


def _jsonl(*records: Any) -> Callable[[], bytes]:
    return lambda: "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


def _parquet(table: Callable[[], pa.Table]) -> Callable[[], bytes]:
    def build() -> bytes:
        buffer = io.BytesIO()
        pq.write_table(table(), buffer)
        return buffer.getvalue()
    return build


def _truncated_parquet() -> bytes:
    whole = _parquet(lambda: pa.table({"order_id": ["t-o1"] * 1000, "customer_id": ["t-c1"] * 1000,
                                       "order_ts": ["2026-01-01"] * 1000}))()
    return whole[: len(whole) // 2]


def _corrupt_parquet_body() -> bytes:
    whole = bytearray(_parquet(lambda: pa.table({"product_id": [f"cb-p{i}" for i in range(500)],
                                                 "name": ["x" * 40] * 500}))())
    whole[8:len(whole) - 200] = b"\x00" * (len(whole) - 208)  # magic bytes intact, pages and footer start zeroed
    return bytes(whole)


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def _log(*lines: str, newline: str = "\n") -> Callable[[], bytes]:
    return lambda: newline.join(lines).encode() + newline.encode()


CLF = '192.0.2.{n} - - [01/Mar/2026:10:00:0{n} +0000] "GET /x{n} HTTP/1.1" 200 1 "-" "ua"'

CASES: tuple[Hostile, ...] = (
    # -- customers -------------------------------------------------------------------------------
    Hostile("customers/bom.csv", "UTF-8 byte order mark before the header",
            lambda: b"\xef\xbb\xbf" + b"customer_id,email,city\nbom-c1,bom@example.org,Lyon\n",
            Quarantined(1, kept=(("silver.customers", "customer_id", "bom-c1", "city", "Lyon"),))),
    Hostile("customers/mixed-endings.csv", "CRLF and LF line ends in one file (DuckDB could not parse it)",
            lambda: b"customer_id,city\r\nme-c1,Paris\nme-c2,Nice\r\nme-c3,Metz\n",
            Refused("ends its lines in more than one way (CRLF and LF)")),
    Hostile("customers/cr-endings.csv", "classic Mac line ends (CR only)",
            lambda: b"customer_id,city\rcr-c1,Paris\rcr-c2,Nice\r",
            Quarantined(2, kept=(("silver.customers", "customer_id", "cr-c2", "city", "Nice"),))),
    Hostile("customers/quoted-newline.csv", "a quoted field holding line breaks is one record",
            _csv("customer_id,city,postal_code", 'qn-c1,"New\nYork\r\nCity",10001', "qn-c2,Boston,02101"),
            Quarantined(2, kept=(("silver.customers", "customer_id", "qn-c1", "city", "New\nYork\r\nCity"),))),
    Hostile("customers/huge-field.csv", "a 1 MB field",
            _csv("customer_id,city", "hf-c1," + "x" * 1_000_000, "hf-c2,Rome"),
            Quarantined(2, kept=(("silver.customers", "customer_id", "hf-c1", "city", "x" * 1_000_000),))),
    Hostile("customers/huge-record.csv", "a 5 MB record (beyond DuckDB's 2 MB line default)",
            _csv("customer_id,city", "hr-c1," + "y" * 5_000_000, "hr-c2,Oslo"),
            Quarantined(2, kept=(("silver.customers", "customer_id", "hr-c1", "city", "y" * 5_000_000),))),
    Hostile("customers/odd-ids.csv", "an emoji id, a slash, 3,000 characters, a space, a control character",
            _csv("customer_id,city", "\U0001f600,Lyon", "a/b,Lyon", "z" * 3000 + ",Lyon", "has space,Lyon",
                 "tab\tid,Lyon", "oi-ok@x.org+1,Lyon"),
            Quarantined(1, {"bad_key": 5}, kept=(("silver.customers", "customer_id", "oi-ok@x.org+1", "city",
                                                   "Lyon"),))),
    Hostile("customers/duplicate-header.csv", "the same column twice in the header",
            _csv("customer_id,email,email", "dh-c1,a@example.org,b@example.org"),
            Refused("has columns whose names differ only by case or repeat: ['email']")),
    Hostile("customers/header-only.csv", "a header and no rows", _csv("customer_id,email"), Quarantined(0)),
    Hostile("customers/empty.csv", "no bytes at all", lambda: b"", Quarantined(0)),
    Hostile("customers/binary.csv", "binary garbage named .csv",
            lambda: bytes(range(256)) * 40, Refused("not valid utf-8")),
    Hostile("customers/latin-1.csv", "Latin-1 bytes after the first 64 KB, UTF-8 expected",
            _csv("customer_id,city", *(f"l1-c{i},Paris" for i in range(5000)), "l1-cx,Besançon",
                 encoding="latin-1"),
            Refused("is not valid utf-8: byte 73918 (e7) cannot be decoded")),
    Hostile("customers/latin-1-declared.csv", "Latin-1 declared in the settings",
            _csv("customer_id,city", "ld-c1,Besançon", "ld-c2,Zürich", encoding="latin-1"),
            Quarantined(2, kept=(("silver.customers", "customer_id", "ld-c1", "city", "Besançon"),),
                        settings={"ingest.encodings.customers": "latin-1"})),
    Hostile("customers/utf-16.csv", "UTF-16 with a byte order mark, UTF-8 expected",
            lambda: "customer_id,city\nu16-c1,Köln\n".encode("utf-16"), Refused("not valid utf-8")),
    Hostile("customers/array.json", "a JSON array instead of JSON Lines",
            lambda: json.dumps([{"customer_id": "ja-c1"}, {"customer_id": "ja-c2"}], indent=2).encode(),
            Quarantined(0, {"malformed_record": 8})),
    Hostile("customers/types.jsonl", "numbers as strings and strings as numbers",
            _jsonl({"customer_id": 12345, "marketing_opt_in": 1, "city": 75001},
                   {"customer_id": "ty-c2", "marketing_opt_in": "TRUE", "created_at": 1700000000},
                   {"customer_id": "ty-c3", "marketing_opt_in": "perhaps"},
                   {"customer_id": "ty-c4", "email": ["a@example.org"], "city": {"name": "Lyon"}}),
            Quarantined(2, {"bad_type": 1, "unparsable_date": 1},
                        kept=(("silver.customers", "customer_id", "12345", "city", "75001"),
                              ("silver.customers", "customer_id", "ty-c4", "city", '{"name":"Lyon"}')))),
    Hostile("customers/deep.jsonl", "an object nested 5,000 levels deep",
            _jsonl({"customer_id": "dp-c1"}, '{"customer_id": "dp-c2", "profile": ' + _deep(5000) + "}"),
            Quarantined(2)),
    Hostile("customers/odd-types.parquet", "Parquet with int ids, list, struct and map columns, tz timestamps",
            _parquet(lambda: pa.table({
                "customer_id": pa.array([101, 102], pa.int64()),
                "tags": pa.array([["a", "b"], []], pa.list_(pa.string())),
                "address": pa.array([{"city": "Lyon", "zip": "69001"}, None],
                                    pa.struct([("city", pa.string()), ("zip", pa.string())])),
                "attributes": pa.array([[("k", "v")], None], pa.map_(pa.string(), pa.string())),
                "created_at": pa.array([1_700_000_000_000_000_000, None], pa.timestamp("ns", tz="Europe/Paris")),
                "marketing_opt_in": pa.array([True, None]),
                "city": pa.array(["Lyon", "Nice"]).dictionary_encode(),
            })),
            Quarantined(2, kept=(("silver.customers", "customer_id", "101", "city", "Lyon"),))),
    # -- orders ----------------------------------------------------------------------------------
    Hostile("orders/dates.csv", "dates outside the plausible window and impossible dates",
            _csv("order_id,customer_id,order_ts,currency,order_total",
                 "dt-o1,b-c1,0001-01-01,EUR,1.00", "dt-o2,b-c1,1899-12-30,EUR,1.00",
                 "dt-o3,b-c1,9999-12-31,EUR,1.00", "dt-o4,b-c1,2030-01-01T00:00:00Z,EUR,1.00",
                 "dt-o5,b-c1,1969-12-31T23:59:59Z,EUR,1.00", "dt-o6,b-c1,2023-02-29,EUR,1.00",
                 "dt-o7,b-c1,2024-13-01,EUR,1.00", "dt-o8,b-c1,2024-02-29T23:59:59+14:00,EUR,1.00",
                 "dt-o9,b-c1,12/03/2024,EUR,1.00", "dt-o10,b-c1,1970-01-01T00:00:00Z,EUR,1.00"),
            Quarantined(2, {"implausible_date": 5, "unparsable_date": 3},
                        kept=(("silver.orders", "order_id", "dt-o8", "order_date", "2024-02-29"),))),
    Hostile("orders/amounts.csv", "negative, huge, non-numeric and over-precise totals",
            _csv("order_id,customer_id,order_ts,currency,order_total",
                 "am-o1,b-c1,2026-03-01,EUR,-5.00", "am-o2,b-c1,2026-03-01,EUR,99999999999999999999",
                 "am-o3,b-c1,2026-03-01,EUR,1e308", "am-o4,b-c1,2026-03-01,EUR,NaN",
                 "am-o5,b-c1,2026-03-01,EUR,Infinity", "am-o6,b-c1,2026-03-01,EUR,\"1,000.00\"",
                 "am-o7,b-c1,2026-03-01,EUR,0x10", "am-o8,am-c8,2026-03-01,EUR,9999999999999.99",
                 "am-o9,b-c1,2026-03-01,EUR,0.00", "am-o10,am-c10,2026-03-01,EUR,9999999999999999.99",
                 # ten of the largest total ingest takes (15 integer digits): the customer's monetary
                 # is the largest gold.customer_rfm_features' decimal(18,2) holds (eleven overflow it)
                 *(f"am-o{i},am-c11,2026-02-{i - 10:02d},EUR,999999999999999.99" for i in range(11, 21))),
            Quarantined(12, {"negative_amount": 1, "bad_type": 7},
                        kept=(("silver.orders", "order_id", "am-o8", "order_total", "9999999999999.99"),
                              ("silver.orders", "order_id", "am-o20", "order_total", "999999999999999.99")))),
    Hostile("orders/status-and-currency.jsonl", "status and currency of every wrong shape",
            _jsonl({"order_id": "sc-o1", "customer_id": "b-c1", "order_ts": "2026-03-01", "status": "SHIPPED"},
                   {"order_id": "sc-o2", "customer_id": "b-c1", "order_ts": "2026-03-01", "status": 3},
                   {"order_id": "sc-o3", "customer_id": "b-c1", "order_ts": "2026-03-01", "currency": "EURO"},
                   {"order_id": "sc-o4", "customer_id": "b-c1", "order_ts": "2026-03-01", "status": " Completed "},
                   {"order_id": "sc-o5", "customer_id": "b-c1", "order_ts": "2026-03-01", "currency": None}),
            Quarantined(2, {"unknown_status": 2, "unknown_currency": 1})),
    Hostile("orders/odd-ids.jsonl", "emoji, slash and 3,000-character order and customer ids",
            _jsonl({"order_id": "\U0001f4e6", "customer_id": "b-c1", "order_ts": "2026-03-01"},
                   {"order_id": "oi-o2", "customer_id": "x/y", "order_ts": "2026-03-01"},
                   {"order_id": "o" * 3000, "customer_id": "b-c1", "order_ts": "2026-03-01"},
                   {"order_id": "oi-o4", "customer_id": "\\", "order_ts": "2026-03-01"},
                   {"order_id": "oi-o5", "customer_id": "b-c1", "order_ts": "2026-03-01"}),
            Quarantined(1, {"bad_key": 4})),
    Hostile("orders/strings.parquet", "every column a string, the total with a comma",
            _parquet(lambda: pa.table({"order_id": ["ps-o1", "ps-o2"], "customer_id": ["b-c1", "b-c2"],
                                       "order_ts": ["2026-03-01T10:00:00Z", "2026-03-02"],
                                       "order_total": ["10.50", "3,5"]})),
            Quarantined(1, {"bad_type": 1}, kept=(("silver.orders", "order_id", "ps-o1", "order_total", "10.50"),))),
    Hostile("orders/native-types.parquet", "timestamps, floats and decimals as Parquet types",
            _parquet(lambda: pa.table({
                "order_id": ["pt-o1", "pt-o2", "pt-o3"], "customer_id": ["b-c1", "b-c1", "b-c2"],
                "order_ts": pa.array([1_772_359_200_000_000, 1_772_445_600_000_000, -62_135_596_800_000_000],
                                     pa.timestamp("us", tz="UTC")),
                "order_total": pa.array([19.99, 0.1 + 0.2, 5.0], pa.float64()),
            })),
            Quarantined(2, {"implausible_date": 1},
                        kept=(("silver.orders", "order_id", "pt-o1", "order_total", "19.99"),))),
    Hostile("orders/nested.parquet", "a struct where the timestamp should be",
            _parquet(lambda: pa.table({"order_id": ["pn-o1"], "customer_id": ["b-c1"],
                                       "order_ts": pa.array([{"date": "2026-03-01"}],
                                                            pa.struct([("date", pa.string())]))})),
            Quarantined(0, {"unparsable_date": 1})),
    Hostile("orders/truncated.parquet", "a Parquet file cut in half", _truncated_parquet,
            Refused("is not a parquet file")),
    # -- order lines -----------------------------------------------------------------------------
    Hostile("order_items/discounts.csv", "discounts above, at and below the line; zero and huge quantities",
            _csv("order_id,product_id,quantity,unit_price,discount,line_number",
                 "b-o1,di-p1,2,5.00,10.01,11", "b-o1,di-p2,2,5.00,10.00,12", "b-o1,di-p3,1,5.00,-1,13",
                 "b-o1,di-p4,0,5.00,0,14", "b-o1,di-p5,1099511627776,5.00,0,15", "b-o1,di-p6,3,0.3333,0,16",
                 "b-o1,di-p7,1,5.00,,17"),
            Quarantined(3, {"discount_exceeds_line": 1, "negative_amount": 1, "negative_quantity": 1,
                            "bad_type": 1})),
    Hostile("order_items/shapes.jsonl", "quantities as 2.0, 2e0, ' 3 ', true; prices as numbers",
            _jsonl({"order_id": "b-o2", "product_id": "sh-p1", "quantity": "2.0", "unit_price": 1, "line_number": 21},
                   {"order_id": "b-o2", "product_id": "sh-p2", "quantity": " 3 ", "unit_price": 2.5, "line_number": 22},
                   {"order_id": "b-o2", "product_id": "sh-p3", "quantity": True, "unit_price": "1", "line_number": 23},
                   {"order_id": "b-o2", "product_id": "sh-p4", "quantity": 2e0, "unit_price": "1", "line_number": 24}),
            Quarantined(1, {"bad_type": 3})),
    Hostile("order_items/nested.parquet", "a list where the quantity should be",
            _parquet(lambda: pa.table({"order_id": ["b-o1"], "product_id": ["ni-p1"],
                                       "quantity": pa.array([[1, 2]], pa.list_(pa.int64())),
                                       "unit_price": [1.0], "line_number": [31]})),
            Quarantined(0, {"bad_type": 1})),
    Hostile("order_items/unknown-orders.csv", "lines of orders nobody landed",
            _csv("order_id,product_id,quantity,unit_price", "uo-nope,uo-p1,1,1.00"),
            Quarantined(0, {"unknown_order": 1})),
    # -- products --------------------------------------------------------------------------------
    Hostile("products/duplicate-header.csv", "the price column twice, in two cases",
            _csv("product_id,price,PRICE", "dp-p1,1.00,2.00"),
            Refused("has columns whose names differ only by case or repeat: ['price']")),
    Hostile("products/unicode.csv", "emoji, CJK, combining marks and right-to-left text in names",
            _csv("product_id,name,category", "un-p1,Mug \U0001f375,日本茶", "un-p2,Cafe\u0301,\u05e2\u05d1\u05e8\u05d9\u05ea"),
            Quarantined(2, kept=(("silver.products", "product_id", "un-p1", "name", "Mug \U0001f375"),
                                 ("silver.products", "product_id", "un-p2", "name", "Cafe\u0301")))),
    Hostile("products/semicolons.csv", "a European CSV: ';' between fields",
            _csv("product_id;name;price", "sc-p1;Mug;3,50", "sc-p2;Pen;1,00"),
            Quarantined(0, {"malformed_record": 2})),
    Hostile("products/ragged.csv", "rows with too many and too few fields; an unclosed quote takes the rest",
            _csv("product_id,name,price", "rg-p0,Cup,3.00", "rg-p1,Mug,1.00,extra,fields", "rg-p2",
                 'rg-p3,"Unclosed,1.00', "rg-p4,Pen,2.00"),
            Quarantined(1, {"malformed_record": 3},
                        kept=(("silver.products", "product_id", "rg-p0", "name", "Cup"),))),
    Hostile("products/corrupt.parquet", "a Parquet body that does not decode", _corrupt_parquet_body,
            Refused("products/corrupt.parquet")),
    # -- currency_rates --------------------------------------------------------------------------
    Hostile("currency_rates/eurofxref-wide.csv", "the ECB's wide layout: a column per currency, no rate column",
            _csv("Date,USD,JPY", "2026-03-02,1.0812,161.2", "2026-03-03,1.0799,160.9"),
            Quarantined(0, {"missing_key": 2})),
    Hostile("currency_rates/bad-values.csv", "lower-case codes, a zero rate, a made-up code, a decimal comma, "
            "a date in words, no base",
            _csv("rate_date,currency,rate,base_currency", "2026-03-02,usd,1.0812,eur", "2026-03-03,GBP,0,EUR",
                 "2026-03-04,ABC,1.5,EUR", '2026-03-05,CHF,"0,95",EUR', "soon,NOK,11.5,EUR",
                 "2026-03-06,DKK,7.46,"),
            Quarantined(1, {"negative_amount": 1, "unknown_currency": 1, "bad_type": 1, "unparsable_date": 1,
                            "missing_key": 1},
                        kept=(("silver.currency_rates", "currency", "USD", "rate", "1.0812"),))),
    Hostile("currency_rates/ecb-portal.parquet", "the ECB Data Portal's columns (TIME_PERIOD, OBS_VALUE, "
            "CURRENCY_DENOM) with its other columns, typed",
            _parquet(lambda: pa.table({"KEY": ["EXR.D.SEK.EUR.SP00.A"], "FREQ": ["D"], "CURRENCY": ["SEK"],
                                       "CURRENCY_DENOM": ["EUR"], "TIME_PERIOD": pa.array([date(2026, 3, 2)]),
                                       "OBS_VALUE": [11.2]})),
            Quarantined(1, kept=(("silver.currency_rates", "currency", "SEK", "rate", "11.2"),))),
    # -- events ----------------------------------------------------------------------------------
    Hostile("events/array.json", "a JSON array of events on one line",
            lambda: json.dumps([{"event_id": "ea-e1", "event_ts": "2026-03-01T00:00:00Z",
                                 "event_type": "page_view"}]).encode() + b"\n",
            Quarantined(0, {"malformed_record": 1})),
    Hostile("events/mixed.jsonl", "non-JSON lines, blank lines, a bare string, number, null and array",
            _jsonl({"event_id": "mx-e1", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view"},
                   "not json at all", "", '"a string"', "42", "null", "[1, 2]", "{\"event_id\": \"mx-e2\""),
            Quarantined(1, {"malformed_record": 6})),
    Hostile("events/bom-crlf.jsonl", "a byte order mark and CRLF line ends",
            lambda: b"\xef\xbb\xbf" + b"".join(json.dumps(
                {"event_id": f"bc-e{i}", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view"}
            ).encode() + b"\r\n" for i in range(3)),
            Quarantined(3)),
    Hostile("events/huge-line.jsonl", "a 3 MB line",
            _jsonl({"event_id": "hl-e1", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view",
                    "url": "/" + "u" * 3_000_000}),
            Quarantined(1, kept=(("silver.events", "event_id", "hl-e1", "url", "/" + "u" * 3_000_000),))),
    Hostile("events/too-long-line.jsonl", "a 17 MB line, past the 16 MB a line may have (DuckDB's buffers are "
            "16 lines long: an unbounded line size asked for gigabytes)",
            _jsonl({"event_id": "tl-e0", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view"},
                   {"event_id": "tl-e1", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view",
                    "url": "/" + "u" * 17_000_000}),
            Refused("events/too-long-line.jsonl has a line of 17,000,096 bytes, more than the 16,777,216")),
    Hostile("events/deep.jsonl", "an event with an extra field nested 100,000 levels deep",
            _jsonl({"event_id": "dv-e1", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view"},
                   '{"event_id": "dv-e2", "event_ts": "2026-03-01T00:00:00Z", "event_type": "x", "p": '
                   + _deep(100_000) + "}"),
            Quarantined(2)),
    Hostile("events/cr-after-lf.jsonl", "a bare CR after LF lines (DuckDB dropped a character of the next line)",
            lambda: b'{"event_id": "cl-e1", "event_ts": "2026-03-01T00:00:00Z", "event_type": "a"}\n'
                    b'{"event_id": "cl-e2", "event_ts": "2026-03-01T00:00:00Z", "event_type": "b"}\r'
                    b'{"event_id": "cl-e3", "event_ts": "2026-03-01T00:00:00Z", "event_type": "c"}\n',
            Refused("ends its lines in more than one way (CR and LF)")),
    Hostile("events/odd.jsonl", "emoji and slash ids, zero-date and far-future timestamps, numeric types",
            _jsonl({"event_id": "\U0001f525", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view"},
                   {"event_id": "ev-e2", "event_ts": "2026-03-01T00:00:00Z", "event_type": "page_view",
                    "customer_id": "c/1"},
                   {"event_id": "ev-e3", "event_ts": "1899-12-30", "event_type": "page_view"},
                   {"event_id": "ev-e4", "event_ts": "9999-12-31T23:59:59Z", "event_type": "page_view"},
                   {"event_id": 5, "event_ts": "2026-03-01T00:00:00Z", "event_type": 7}),
            Quarantined(1, {"bad_key": 2, "implausible_date": 2})),
    # -- access logs -----------------------------------------------------------------------------
    Hostile("access_logs/other-formats.log", "Common Log Format, JSON, W3C, syslog lines among good ones",
            _log(CLF.format(n=1), '192.0.2.2 - - [01/Mar/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5',
                 '{"remote_addr": "192.0.2.3", "request": "GET / HTTP/1.1", "status": 200}',
                 "#Fields: date time s-ip cs-method cs-uri-stem", "2026-03-01 10:00:00 192.0.2.4 GET /",
                 "<34>Mar  1 10:00:00 host sshd[1]: Failed password", "",
                 '2001:db8::1 - - [01/Mar/2026:10:00:00 +0000] "GET /v6 HTTP/2.0" 404 - "-" "ua \U0001f600"'),
            Quarantined(2, {"unparsable_line": 6},
                        kept=(("silver.access_logs", "path", "/v6", "user_agent", "ua \U0001f600"),))),
    Hostile("access_logs/dates.log", "zero, far-future and impossible request dates",
            _log('192.0.2.5 - - [01/Jan/0001:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"',
                 '192.0.2.6 - - [31/Dec/9999:23:59:59 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"',
                 '192.0.2.7 - - [30/Feb/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"',
                 CLF.format(n=8)),
            Quarantined(1, {"implausible_date": 2, "unparsable_date": 1})),
    Hostile("access_logs/crlf.log", "CRLF line ends", _log(CLF.format(n=1), CLF.format(n=2), newline="\r\n"),
            Quarantined(2)),
    Hostile("access_logs/lf-then-crlf.log", "LF then CRLF lines (DuckDB read a line that is not there)",
            lambda: (CLF.format(n=1) + "\n" + CLF.format(n=2) + "\r\n" + CLF.format(n=3) + "\n").encode(),
            Refused("ends its lines in more than one way (CRLF and LF)")),
    Hostile("access_logs/latin-1.log", "a Latin-1 byte in a path",
            lambda: (CLF.format(n=1) + "\n").encode() + b'192.0.2.9 - - [01/Mar/2026:10:00:00 +0000] "GET /caf\xe9 '
            b'HTTP/1.1" 200 1 "-" "ua"\n', Refused("is not valid utf-8: byte 129 (e9) cannot be decoded")),
    Hostile("access_logs/nul.log", "NUL bytes in a line",
            lambda: (CLF.format(n=1) + "\n").encode() + b"\x00\x00\x00\n", Quarantined(1, {"unparsable_line": 1})),
    Hostile("access_logs/empty.log", "no bytes at all", lambda: b"", Quarantined(0)),
    Hostile("access_logs/huge-line.log", "a 3 MB request path",
            _log('192.0.2.9 - - [01/Mar/2026:10:00:00 +0000] "GET /' + "p" * 3_000_000 + ' HTTP/1.1" 200 1 "-" "ua"'),
            Quarantined(1)),
    # -- the AWS guidance CSV --------------------------------------------------------------------
    Hostile("aws_rfm_guidance/odd.csv", "bad dates, quantities and ids in the guidance format",
            _csv("EventName,ProductCode,UnitPrice,Quantity,CustomerID,Date",
                 'PURCHASED,og-P1,3.00,1,og-g1,"Mon, 01 Jan 0001 00:00:00 +0000"',
                 'PURCHASED,og-P1,3.00,-2,og-g2,"Sun, 01 Mar 2026 10:00:00 +0000"',
                 'PURCHASED,og-P1,abc,1,og-g3,"Sun, 01 Mar 2026 10:00:00 +0000"',
                 'PURCHASED,og-P1,3.00,1,\U0001f600,"Sun, 01 Mar 2026 10:00:00 +0000"',
                 'PURCHASED,og-P1,3.00,1,og-g5,2026-03-01',
                 'VIEWED,og-P1,,,og-g6,"Sun, 01 Mar 2026 10:00:00 +0000"'),
            Quarantined(2, {"implausible_date": 1, "negative_quantity": 1, "bad_type": 1, "bad_key": 1})),
    Hostile("aws_rfm_guidance/header-only.csv", "a header and no rows",
            _csv("EventName,ProductCode,UnitPrice,Quantity,CustomerID,Date"), Quarantined(0)),
)


def write_case(landing: Path, case: Hostile) -> Path:
    path = landing / case.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(case.build())
    return path
