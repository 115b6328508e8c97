"""Small hand-built silver tables with the exact silver schemas (contract.entities.SILVER_TABLES +
lineage columns), written through Lake.write_arrow as the Spark conform job would."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa

from rfmlake.contract.entities import LINEAGE_COLUMNS, SILVER_TABLES
from rfmlake.lake import Lake


def arrow_type(type_name: str) -> pa.DataType:
    if type_name.startswith("decimal("):
        precision, scale = (int(part) for part in type_name[len("decimal(") : -1].split(","))
        return pa.decimal128(precision, scale)
    return {
        "string": pa.string(),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        # Spark writes TIMESTAMP_MICROS adjusted to UTC.
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[type_name]


def silver_schema(name: str) -> pa.Schema:
    return pa.schema([pa.field(col, arrow_type(typ)) for col, typ, _ in SILVER_TABLES[name] + LINEAGE_COLUMNS])


def silver_table(name: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = silver_schema(name)
    known = set(schema.names)
    complete = []
    for row in rows:
        unknown = set(row) - known
        if unknown:
            raise KeyError(f"silver.{name} has no column(s) {sorted(unknown)}")
        full = {col: row.get(col) for col in schema.names}
        full["_source_file"] = full["_source_file"] or f"{name}/fixture.csv"
        full["_row_hash"] = full["_row_hash"] or hashlib.sha256(repr(sorted(row.items())).encode()).hexdigest()
        complete.append(full)
    return pa.Table.from_pylist(complete, schema=schema)


def write_silver(lake: Lake, tables: dict[str, list[dict[str, Any]]]) -> None:
    for name, rows in tables.items():
        lake.write_arrow("silver", name, silver_table(name, rows))


def _ts(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


def order(order_id: str, customer_id: str, day: str, status: str, currency: str,
          total: str | None) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": customer_id,
        "order_ts": _ts(day),
        "order_date": date.fromisoformat(day),
        "status": status,
        "currency": currency,
        "order_total": Decimal(total) if total is not None else None,
    }


def item(order_id: str, line_number: int, quantity: int, unit_price: str, discount: str = "0") -> dict[str, Any]:
    amount = (quantity * Decimal(unit_price) - Decimal(discount)).quantize(Decimal("0.01"))
    return {
        "order_id": order_id,
        "line_number": line_number,
        "product_id": f"p{line_number}",
        "quantity": quantity,
        "unit_price": Decimal(unit_price),
        "discount": Decimal(discount),
        "line_amount": amount,
    }


def customer(customer_id: str, opt_in: bool | None = True) -> dict[str, Any]:
    token = hashlib.sha256(customer_id.encode()).hexdigest()
    return {
        "customer_id": customer_id,
        "email_token": token,
        "phone_token": None,
        "first_name_token": token,
        "last_name_token": token,
        "has_email": True,
        "has_phone": False,
        "country": "DE",
        "city": "Berlin",
        "postal_code": "10115",
        "created_at": _ts("2023-01-01"),
        "updated_at": _ts("2023-06-01"),
        "marketing_opt_in": opt_in,
    }


RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}  # units of EUR per unit


def rate(day: str, currency: str, per_eur: float, base: str = "EUR") -> dict[str, Any]:
    """A landed rate: one unit of `base` is worth `per_eur` units of `currency` from `day` on."""
    return {"rate_date": date.fromisoformat(day), "base_currency": base, "currency": currency, "rate": per_eur}


def shop() -> dict[str, list[dict[str, Any]]]:
    """The reference shop. Expected RFM values are computed by hand in the tests."""
    orders = [
        order("o1", "c1", "2024-01-10", "completed", "EUR", "999.00"),   # has lines: header ignored
        order("o2", "c1", "2024-03-01", "completed", "USD", "50.00"),    # no lines: header total
        order("o3", "c1", "2024-03-05", "cancelled", "EUR", "100.00"),
        order("o4", "c2", "2024-02-15", "completed", "GBP", None),       # lines only
        order("o5", "c2", "2024-02-20", "returned", "EUR", "40.00"),
        order("o6", "c3", "2024-03-09", "completed", "EUR", "30.00"),
        order("o7", "c4", "2024-03-10", "pending", "EUR", "10.00"),      # latest order: sets as_of
        order("o8", "g1", "2023-12-31", "completed", "USD", None),       # guest, not in CRM
        order("o9", "g1", "2024-01-05", "completed", "EUR", "1.00"),
    ]
    items = [
        item("o1", 1, 2, "10.0000"),
        item("o1", 2, 1, "5.5000", "0.50"),
        item("o4", 1, 3, "3.3333"),
        item("o6", 1, 1, "30.0000"),
        item("o8", 1, 1, "10.0100"),
    ]
    events = [
        {"event_id": "e1", "event_ts": _ts("2024-03-10"), "event_date": date(2024, 3, 10),
         "event_type": "purchase", "customer_id": "c5", "anonymous_id": "a1", "session_id": "s1",
         "product_id": "p1", "url": "/checkout", "referrer": None, "user_agent": "ua", "ip_token": "t"},
        {"event_id": "e2", "event_ts": _ts("2024-03-10"), "event_date": date(2024, 3, 10),
         "event_type": "add_to_cart", "customer_id": "c5", "anonymous_id": "a1", "session_id": "s1",
         "product_id": "p1", "url": "/p/1", "referrer": None, "user_agent": "ua", "ip_token": "t"},
    ]
    return {
        "customers": [customer(c) for c in ("c1", "c2", "c3", "c4")] + [customer("c5", None)],
        "orders": orders,
        "order_items": items,
        "products": [{"product_id": "p1", "name": "Mug", "category": "home", "brand": "acme",
                      "price": Decimal("10.0000"), "currency": "EUR"},
                     {"product_id": "p2", "name": "Tea", "category": "food", "brand": "acme",
                      "price": Decimal("5.5000"), "currency": "EUR"}],
        "events": events,
        # Quoted against EUR, as the ECB does, from before the first order: EUR becomes the
        # reporting currency (the rates' one base) and every order converts at RATES.
        "currency_rates": [rate("2023-01-01", c, 1 / r) for c, r in RATES.items() if c != "EUR"],
    }
