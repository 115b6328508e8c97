"""An independent, deliberately plain re-reading of a generated landing folder for the tests.

It applies the contract's rules (DESIGN.md section 3, rfmlake.contract.QuarantineReason) row by row,
first failing rule wins, without using any generator code, so tests can check that the manifest's
injected counts are what is really in the files and that clean data never trips a rule.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow.parquet as pq

from rfmlake.contract import ORDER_STATUSES
from rfmlake.contract.currencies import ISO_4217_CODES

ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})?$")
CLF = re.compile(
    r'^\S+ \S+ \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
    r'"[A-Z]+ \S+ HTTP/\d\.\d" \d{3} (\d+|-) "[^"]*" "[^"]*"$'
)


def is_iso(value: object) -> bool:
    if not isinstance(value, str) or not ISO.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def integer(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return None


ID = re.compile(r"^[A-Za-z0-9._:@+=~#-]{1,128}$")  # the contract's ids (reason bad_key)


def bad_id(value: object) -> bool:
    return not ID.match(str(value).strip())


def implausible(value: object) -> bool:
    """Outside the default plausible window: 1970-01-01 up to the day after today (settings.ingest)."""
    day = datetime.fromisoformat(str(value).replace("Z", "+00:00")).date()
    return not date(1970, 1, 1) <= day <= date.today() + timedelta(days=1)


def lower_keys(row: dict[str, object]) -> dict[str, object]:
    return {k.lower(): v for k, v in row.items()}


def read_csv_rows(path: Path) -> tuple[list[dict[str, object]], int]:
    """Rows as dicts (lower-cased names) and the number of lines with an unclosed quote."""
    lines = path.read_text(encoding="utf-8").splitlines()
    good = [line for line in lines if line.count('"') % 2 == 0]
    rows = [lower_keys(r) for r in csv.DictReader(io.StringIO("\n".join(good) + "\n"))]
    return rows, len(lines) - len(good)


def read_jsonl_rows(path: Path) -> tuple[list[dict[str, object]], int]:
    rows, malformed = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            malformed += 1
            continue
        if isinstance(value, dict):
            rows.append(lower_keys(value))
        else:
            malformed += 1
    return rows, malformed


def read_rows(folder: Path) -> tuple[list[tuple[str, dict[str, object]]], int]:
    """(file name, row) for every row of every file of an entity, in file-name order, and malformed count."""
    out: list[tuple[str, dict[str, object]]] = []
    malformed = 0
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            rows, bad = read_csv_rows(path)
        elif path.suffix == ".jsonl":
            rows, bad = read_jsonl_rows(path)
        elif path.suffix == ".parquet":
            rows, bad = [lower_keys(r) for r in pq.read_table(path).to_pylist()], 0
        else:
            continue
        out.extend((path.name, row) for row in rows)
        malformed += bad
    return out, malformed


def _empty(value: object) -> bool:
    return value is None or value == ""


def _canonical(row: dict[str, object], columns: tuple[str, ...], decimals: tuple[str, ...] = ()) -> tuple:
    values = []
    for column in columns:
        value = row.get(column)
        if column in decimals and not _empty(value):
            value = decimal(value)
        values.append(None if _empty(value) else value)
    return tuple(values)


def _dedupe(valid: list[dict[str, object]], key: tuple[str, ...], columns: tuple[str, ...],
            decimals: tuple[str, ...], reasons: Counter[str]) -> None:
    versions: dict[tuple, list[tuple]] = {}
    for row in valid:
        versions.setdefault(tuple(row.get(k) for k in key), []).append(_canonical(row, columns, decimals))
    for copies in versions.values():
        distinct = len(set(copies))
        reasons["duplicate"] += len(copies) - distinct
        reasons["conflicting_duplicate"] += distinct - 1


def quarantine_counts(root: Path) -> dict[str, dict[str, int]]:
    result: dict[str, Counter[str]] = {}

    # customers
    reasons: Counter[str] = Counter()
    rows, reasons["malformed_record"] = read_rows(root / "customers")
    valid = []
    for _, row in rows:
        if _empty(row.get("customer_id")):
            reasons["missing_key"] += 1
        elif not all(_empty(row.get(c)) or is_iso(row.get(c)) for c in ("created_at", "updated_at")):
            reasons["unparsable_date"] += 1
        else:
            valid.append(row)
    columns = ("customer_id", "email", "phone", "first_name", "last_name", "country", "city", "postal_code",
               "created_at", "updated_at", "marketing_opt_in")
    _dedupe(valid, ("customer_id",), columns, (), reasons)
    result["customers"] = reasons

    # orders
    reasons = Counter()
    rows, reasons["malformed_record"] = read_rows(root / "orders")
    valid = []
    for _, row in rows:
        total = row.get("order_total")
        if _empty(row.get("order_id")) or _empty(row.get("customer_id")) or _empty(row.get("order_ts")):
            reasons["missing_key"] += 1
        elif bad_id(row["order_id"]) or bad_id(row["customer_id"]):
            reasons["bad_key"] += 1
        elif not is_iso(row["order_ts"]) and not (isinstance(row["order_ts"], str)
                                                  and re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["order_ts"])):
            reasons["unparsable_date"] += 1
        elif implausible(row["order_ts"]):
            reasons["implausible_date"] += 1
        elif not _empty(total) and decimal(total) is None:
            reasons["bad_type"] += 1
        elif not _empty(total) and decimal(total) < 0:  # type: ignore[operator]
            reasons["negative_amount"] += 1
        elif not _empty(row.get("currency")) and row["currency"] not in ISO_4217_CODES:
            reasons["unknown_currency"] += 1
        elif not _empty(row.get("status")) and row["status"] not in ORDER_STATUSES:
            reasons["unknown_status"] += 1
        else:
            valid.append(row)
    _dedupe(valid, ("order_id",), ("order_id", "customer_id", "order_ts", "status", "currency", "order_total"),
            ("order_total",), reasons)
    order_ids = {row["order_id"] for row in valid}
    result["orders"] = reasons

    # order_items
    reasons = Counter()
    rows, reasons["malformed_record"] = read_rows(root / "order_items")
    valid = []
    for _, row in rows:
        quantity, unit_price = integer(row.get("quantity")), decimal(row.get("unit_price"))
        discount = None if _empty(row.get("discount")) else decimal(row.get("discount"))
        if any(_empty(row.get(c)) for c in ("order_id", "product_id", "quantity", "unit_price")):
            reasons["missing_key"] += 1
        elif quantity is None or unit_price is None or (not _empty(row.get("discount")) and discount is None):
            reasons["bad_type"] += 1
        elif quantity <= 0:
            reasons["negative_quantity"] += 1
        elif unit_price < 0 or (discount is not None and discount < 0):
            reasons["negative_amount"] += 1
        elif discount is not None and discount > quantity * unit_price:
            reasons["discount_exceeds_line"] += 1
        elif row["order_id"] not in order_ids:
            reasons["unknown_order"] += 1
        else:
            valid.append(row)
    _dedupe(valid, ("order_id", "line_number"),
            ("order_id", "line_number", "product_id", "quantity", "unit_price", "discount"),
            ("unit_price", "discount"), reasons)
    result["order_items"] = reasons

    # events
    reasons = Counter()
    rows, reasons["malformed_record"] = read_rows(root / "events")
    valid = []
    for _, row in rows:
        if _empty(row.get("event_ts")) or _empty(row.get("event_type")):
            reasons["missing_key"] += 1
        elif not is_iso(row["event_ts"]):
            reasons["unparsable_date"] += 1
        else:
            valid.append(row)
    _dedupe(valid, ("event_id",), tuple(sorted({k for row in valid[:1] for k in row})), (), reasons)
    result["events"] = reasons

    # currency rates
    reasons = Counter()
    rows, reasons["malformed_record"] = read_rows(root / "currency_rates")
    valid = []
    for _, row in rows:
        rate = decimal(row.get("rate"))
        if any(_empty(row.get(c)) for c in ("rate_date", "currency", "rate", "base_currency")):
            reasons["missing_key"] += 1
        elif not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(row["rate_date"])):
            reasons["unparsable_date"] += 1
        elif rate is None:
            reasons["bad_type"] += 1
        elif rate <= 0:
            reasons["negative_amount"] += 1
        elif row["currency"] not in ISO_4217_CODES or row["base_currency"] not in ISO_4217_CODES:
            reasons["unknown_currency"] += 1
        else:
            valid.append(row)
    _dedupe(valid, ("rate_date", "base_currency", "currency"), ("rate_date", "base_currency", "currency", "rate"),
            ("rate",), reasons)
    result["currency_rates"] = reasons

    # access logs
    reasons = Counter()
    for path in sorted((root / "access_logs").iterdir()):
        reasons["unparsable_line"] += sum(1 for line in path.read_text().splitlines() if not CLF.match(line))
    result["access_logs"] = reasons

    return {entity: dict(sorted((r, n) for r, n in c.items() if n)) for entity, c in result.items() if +c}
