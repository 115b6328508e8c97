"""A tiny landing folder with every entity, every format and one crafted row per quarantine reason."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CLEAR_PII = (
    "alice@example.com", "Alice", "Smith", "+442012345678", "2012345678", "bob@new.com", "bob@x.com",
    "Robert", "203.0.113.9", "198.51.100.7", "frank", "g1@mail.com", "33612345678", "guest-user-1",
    "10 Rue de Rivoli",
)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_landing(root: Path) -> Path:
    landing = root / "landing"
    _write(landing / "_generator_manifest.json", "{}")
    _write(
        landing / "customers" / "crm.csv",
        "Customer_ID,EMAIL,Phone,first_name,last_name,country,city,postal_code,created_at,updated_at,"
        "marketing_opt_in,Loyalty_Tier\n"
        "c1, Alice@Example.com ,+44 (20) 1234-5678,Alice,Smith,gb,London,N1,2023-01-01T10:00:00+02:00,"
        "2024-01-01T00:00:00Z,yes,gold\n"
        "c2,bob@x.com,,Robert,,de,Berlin,,2023-01-01,2023-02-01,no,\n"
        " ,nobody@x.com,,,,,,,,,,\n"
        "c4,,,,,,,,yesterday,,,\n"
        "c5,,,,,,,,,,maybe,\n"
        "c6,a,b,c,d,e,f,g,h,i,j,k,l,m\n",
    )
    _write(
        landing / "customers" / "crm2.jsonl",
        json.dumps({"customer_id": "c2", "email": "bob@new.com", "updated_at": "2024-06-01T00:00:00"}) + "\n"
        + json.dumps({"CUSTOMER_ID": "c1", "email": " Alice@Example.com ", "phone": "+44 (20) 1234-5678",
                      "first_name": "Alice", "last_name": "Smith", "country": "gb", "city": "London",
                      "postal_code": "N1", "created_at": "2023-01-01T10:00:00+02:00",
                      "updated_at": "2024-01-01T00:00:00Z", "marketing_opt_in": "yes",
                      "loyalty_tier": "gold"}) + "\n"
        + "{not json\n",
    )
    _write(
        landing / "orders" / "orders.csv",
        "order_id,customer_id,order_ts,status,currency,order_total\n"
        "o1,c1,2024-01-05T10:00:00+02:00,,usd,10.00\n"
        "o2,c2,2024-01-06,Pending,,\n"
        "o3,c1,not-a-date,,EUR,\n"
        "o4,c1,2024-01-07,completed,XYZ,\n"
        "o5,c1,2024-01-07,shipped,EUR,\n"
        "o6,c1,2024-01-07,,EUR,-5\n"
        "o7,c1,2024-01-07,,EUR,abc\n"
        ",c1,2024-01-07,,,\n"
        "o8,c1,2024-01-08T12:00:00,,EUR,1.00\n"
        "g-o,guest-1,2024-01-09,,,\n"
        "o/9,c1,2024-01-07,,EUR,\n"
        "o10,c1,9999-12-31,,EUR,\n"
        "o11,c1,0001-01-01,,EUR,\n",
    )
    orders2 = landing / "orders" / "orders2.parquet"
    pq.write_table(
        pa.table({
            "order_id": ["o8", "o2"], "customer_id": ["c1", "c2"],
            "order_ts": ["2024-01-08T12:00:00", "2024-01-06"], "status": [None, "Pending"],
            "currency": ["EUR", None], "order_total": ["2.00", None],
        }),
        orders2,
    )
    items = [
        {"order_id": "o1", "product_id": "p1", "quantity": "2", "unit_price": "3.5", "discount": "1"},
        {"order_id": "o1", "product_id": "p2", "quantity": 1, "unit_price": 2.25},
        {"order_id": "o1", "product_id": "p1", "quantity": "2", "unit_price": "3.5", "discount": "1"},
        {"order_id": "o1", "product_id": "p3", "quantity": "-2", "unit_price": "1"},
        {"order_id": "o1", "product_id": "p4", "quantity": "1", "unit_price": "-1"},
        {"order_id": "o1", "product_id": "p5", "quantity": "two", "unit_price": "1"},
        {"order_id": "o2", "product_id": "p1", "quantity": "1", "unit_price": "1", "line_number": "1"},
        {"order_id": "o2", "product_id": "p2", "quantity": "1", "unit_price": "1", "line_number": "1"},
        {"order_id": "o99", "product_id": "p1", "quantity": "1", "unit_price": "1"},
        {"order_id": "o3", "product_id": "p1", "quantity": "1", "unit_price": "1"},
        {"order_id": "o1", "product_id": "", "quantity": "1", "unit_price": "1"},
        {"order_id": "o2", "product_id": "p9", "quantity": "1", "unit_price": "1", "discount": "5", "line_number": "2"},
    ]
    _write(landing / "order_items" / "items.jsonl", "".join(json.dumps(i) + "\n" for i in items))
    _write(
        landing / "products" / "products.csv",
        "product_id,name,category,brand,price,currency\n"
        "p1,Mug,home,Acme,3.5,\n"
        "p2,Pen,office,Acme,2.25,eur\n"
        "p3,Bad,home,Acme,-3,EUR\n"
        "p4,Odd,home,Acme,4,ABC\n"
        ",Nameless,home,Acme,1,EUR\n",
    )
    events = [
        {"event_id": "e1", "event_ts": "2024-01-05T10:00:00+01:00", "event_type": "Page_View",
         "customer_id": "c1", "ip": "203.0.113.9", "url": "/home"},
        {"event_ts": "2024-01-05T11:00:00Z", "event_type": "add_to_cart", "anonymous_id": "a1"},
        {"event_ts": "2024-01-05T11:00:00Z", "event_type": "add_to_cart", "anonymous_id": "a1"},
        {"event_id": "e3", "event_ts": "2024-01-05T12:00:00Z"},
        {"event_id": "e4", "event_ts": "05/01/2024", "event_type": "page_view"},
        {"event_id": "e5", "event_ts": "2030-01-01T00:00:00Z", "event_type": "page_view"},
        {"event_id": "e6", "event_ts": "2024-01-05T12:00:00Z", "event_type": "page_view", "customer_id": "\U0001F4A5"},
    ]
    _write(landing / "events" / "2024" / "events.jsonl", "".join(json.dumps(e) + "\n" for e in events))
    _write(
        landing / "access_logs" / "web-1-2024-01-05.log",
        '203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
        '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n'
        '198.51.100.7 - - [05/Jan/2024:00:00:01 +0000] "POST /cart HTTP/1.1" 304 - "-" "curl/8.0"\n'
        "this is not a log line\n",
    )
    # The ECB Data Portal's CSV (its columns are aliases of the contract's), a monthly row among the
    # daily ones; then the contract's own layout with one row per quarantine kind; then the ECB's
    # wide eurofxref layout, which is not read.
    _write(
        landing / "currency_rates" / "ecb.csv",
        "KEY,FREQ,CURRENCY,CURRENCY_DENOM,EXR_TYPE,EXR_SUFFIX,TIME_PERIOD,OBS_VALUE\n"
        "EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2024-01-04,1.0942\n"
        "EXR.D.USD.EUR.SP00.A,D,USD,EUR,SP00,A,2024-01-05,1.0921\n"
        "EXR.D.GBP.EUR.SP00.A,D,GBP,EUR,SP00,A,2024-01-05,0.8600\n"
        "EXR.M.USD.EUR.SP00.A,M,USD,EUR,SP00,A,2024-01,1.0905\n",
    )
    rates = [
        {"rate_date": "2024-01-05", "currency": "usd", "rate": "1.0925", "base_currency": " eur "},
        {"rate_date": "2024-01-08", "currency": "SEK", "rate": "11.02", "base_currency": "EUR"},
        {"rate_date": "2024-01-08", "currency": "SEK", "rate": "11.02", "base_currency": "EUR"},
        {"rate_date": "2024-01-08", "currency": "CHF", "rate": 0.9301, "base_currency": "EUR"},
        {"rate_date": "2024-01-08", "currency": "NOK", "rate": "0", "base_currency": "EUR"},
        {"rate_date": "2024-01-08", "currency": "XYZ", "rate": "1.5", "base_currency": "EUR"},
        {"rate_date": "2024-01-08", "currency": "CHF", "rate": "0.93", "base_currency": "EURO"},
        {"rate_date": "2024-01-09", "currency": "CHF", "rate": "n/a", "base_currency": "EUR"},
        {"rate_date": "2024-01-09", "rate": "1.1", "base_currency": "EUR"},
        {"rate_date": "2099-01-01", "currency": "CHF", "rate": "0.93", "base_currency": "EUR"},
    ]
    _write(landing / "currency_rates" / "rates.jsonl", "".join(json.dumps(r) + "\n" for r in rates))
    _write(landing / "currency_rates" / "eurofxref.csv", "Date,USD,JPY,\n2024-01-05,1.0921,157.87,\n")
    _write(
        landing / "aws_rfm_guidance" / "guidance.csv",
        "EventName,ProductCode,ProductName,ProductDescription,UnitPrice,Quantity,CustomerID,Username,"
        "ChannelType,Address,City,State,Country,Date\n"
        'PURCHASED,P100,Lamp,A lamp,10.5,2,g1,guest-user-1,EMAIL,G1@Mail.com,Paris,,fr,"Mon, 19 Sep 2022 12:16:01 +0530"\n'
        'PURCHASED,P101,Bulb,A bulb,5,1,g1,guest-user-1,EMAIL,G1@Mail.com,Paris,,fr,"Mon, 19 Sep 2022 12:16:01 +0530"\n'
        'VIEWED,P100,Lamp,A lamp,,,g2,,SMS,+33 6 12 34 56 78,Lyon,,FR,"Tue, 20 Sep 2022 08:00:00 +0000"\n'
        'PURCHASED,P100,Lamp,A lamp,10.5,1,c1,,EMAIL,10 Rue de Rivoli,Paris,,FR,"Wed, 21 Sep 2022 08:00:00 +0000"\n'
        "PURCHASED,P100,Lamp,A lamp,10.5,1,g3,,EMAIL,x@y.z,Paris,,FR,someday\n"
        'PURCHASED,P100,Lamp,A lamp,10.5,0,g3,,EMAIL,x@y.z,Paris,,FR,"Wed, 21 Sep 2022 08:00:00 +0000"\n',
    )
    return landing


TEST_KEY = "test-key-not-a-secret"  # same as tests/conftest.py's autouse fixture


@dataclass
class IngestRun:
    landing: Path
    ctx: object
    report: object


def run_once(root: Path, engine: object = None) -> IngestRun:
    """Ingest the crafted landing under `root` (built once) into `root/lake` on `engine` (DuckDB by default)."""
    from rfmlake.ingest.engine import DuckEngine
    from rfmlake.ingest.jobs import run_ingest
    from rfmlake.lake import Lake
    from rfmlake.pipeline.context import RunContext
    from rfmlake.settings import Settings

    landing = build_landing(root) if not (root / "landing").exists() else root / "landing"
    ctx = RunContext(landing_dir=landing, lake=Lake(root / "lake"), settings=Settings())
    engine = engine or DuckEngine()
    try:
        return IngestRun(landing, ctx, run_ingest(engine, ctx))
    finally:
        if not hasattr(engine, "spark"):
            engine.close()


