"""Who may be sent: gold.customer_rfm joined with consent (silver.customers) and contact addresses
(bronze.customers, the only zone holding them in clear). See docs/adr for the decision.

Addresses are read only for customers who consented (to enter/update them) or who are leaving a
destination (to unsubscribe them), resolved to the newest CRM record, and are never logged.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from rfmlake.activation.errors import ActivationError
from rfmlake.activation.model import MEMBER_ATTRIBUTES, Channel, Member
from rfmlake.lake import Lake
from rfmlake.lake.tables import parquet_scan

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")
_PHONE_STRIP = re.compile(r"[\s().\-/]")
_PHONE = re.compile(r"^\+?[0-9]{7,15}$")

SKIP_NO_CONSENT = "no_marketing_consent"
SKIP_CONSENT_UNKNOWN = "consent_unknown"
SKIP_NOT_IN_CRM = "not_in_customers"


def normalize_email(value: str | None) -> str | None:
    if value is None:
        return None
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def normalize_phone(value: str | None) -> str | None:
    if value is None:
        return None
    phone = _PHONE_STRIP.sub("", value.strip())
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if _PHONE.match(phone) else None


@dataclass
class Audience:
    """Members eligible for one channel, and why the others were skipped."""

    gold_version: str
    as_of: str
    members: dict[str, Member]
    skipped: Counter[str]
    segments: tuple[str, ...]


def _sql_connect(lake: Lake):  # noqa: ANN202 - duckdb connection
    import duckdb

    return duckdb.connect(":memory:")


def _scan(lake: Lake, zone: str, name: str) -> str:
    ref = lake.current(zone, name)
    if ref is None:
        raise ActivationError(f"activation needs {zone}.{name}, which does not exist in the lake at {lake}; "
                              "run the pipeline first (rfmlake run)")
    return parquet_scan(ref)


# The address of a customer is the one of the CRM record silver accepted: the bronze row with the
# accepted row's lineage (source file and row hash), never a rejected or superseded record.
_ACCEPTED_ADDRESS_SQL = """
    SELECT s.customer_id, b.email, b.phone
    FROM {silver} s
    JOIN {bronze} b ON b._row_hash = s._row_hash AND b._source_file = s._source_file
    QUALIFY row_number() OVER (PARTITION BY s.customer_id ORDER BY b._loaded_at DESC) = 1
"""


def load_audience(lake: Lake, channel: Channel) -> Audience:
    """Every customer of the current gold.customer_rfm version, eligible for `channel` or skipped with a reason."""
    gold_ref = lake.current("gold", "customer_rfm")
    if gold_ref is None:
        raise ActivationError(f"gold.customer_rfm does not exist in the lake at {lake}; run the pipeline first")
    con = _sql_connect(lake)
    attrs = ", ".join(f"g.{c}" for c in MEMBER_ATTRIBUTES if c != "rfm_segment")
    # Addresses are selected only where consent is true: the others never leave bronze.
    sql = f"""
        WITH consent AS (
            SELECT customer_id, marketing_opt_in FROM {_scan(lake, "silver", "customers")}
        ), addr AS ({_ACCEPTED_ADDRESS_SQL.format(silver=_scan(lake, "silver", "customers"),
                                                   bronze=_scan(lake, "bronze", "customers"))})
        SELECT g.customer_id, g.rfm_segment, {attrs},
               c.customer_id IS NOT NULL AS in_crm, c.marketing_opt_in,
               CASE WHEN c.marketing_opt_in THEN a.email END AS email,
               CASE WHEN c.marketing_opt_in THEN a.phone END AS phone
        FROM {parquet_scan(gold_ref)} g
        LEFT JOIN consent c USING (customer_id)
        LEFT JOIN addr a USING (customer_id)
        ORDER BY g.customer_id
    """
    table: pa.Table = con.execute(sql).fetch_arrow_table()
    con.close()
    rows = table.to_pylist()
    members: dict[str, Member] = {}
    skipped: Counter[str] = Counter()
    segments: set[str] = set()
    as_of = ""
    for row in rows:
        segment = row["rfm_segment"]
        if segment is None:
            raise ActivationError(f"gold.customer_rfm has a customer without rfm_segment ({row['customer_id']!r})")
        segments.add(segment)
        as_of = str(row["as_of_date"])
        if not row["in_crm"]:
            skipped[SKIP_NOT_IN_CRM] += 1
            continue
        if row["marketing_opt_in"] is None:
            skipped[SKIP_CONSENT_UNKNOWN] += 1
            continue
        if not row["marketing_opt_in"]:
            skipped[SKIP_NO_CONSENT] += 1
            continue
        email, phone = normalize_email(row["email"]), normalize_phone(row["phone"])
        reason = _missing_address(channel, row["email"], email, row["phone"], phone)
        if reason:
            skipped[reason] += 1
            continue
        attributes = {c: _plain(row[c]) for c in MEMBER_ATTRIBUTES}
        members[row["customer_id"]] = Member(
            customer_id=row["customer_id"], segment=segment, attributes=attributes,
            email=email if channel in ("email", "any") else None,
            phone=phone if channel in ("phone", "any") else None,
        )
    return Audience(gold_version=gold_ref.path.name, as_of=as_of, members=members, skipped=skipped,
                    segments=tuple(sorted(segments)))


def _missing_address(channel: Channel, raw_email: str | None, email: str | None,
                     raw_phone: str | None, phone: str | None) -> str | None:
    if channel == "email" and email is None:
        return "invalid_email" if raw_email and raw_email.strip() else "no_email"
    if channel == "phone" and phone is None:
        return "invalid_phone" if raw_phone and raw_phone.strip() else "no_phone"
    if channel == "any" and email is None and phone is None:
        return "no_usable_address"
    return None


def _plain(value: object) -> object:
    """JSON-friendly scalars (Decimal -> float, dates -> ISO strings)."""
    from datetime import date, datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def load_exit_addresses(lake: Lake, customer_ids: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
    """The accepted address of customers leaving a destination, so they can be unsubscribed
    whatever their consent is now (a withdrawal must reach the tool)."""
    ids = sorted(set(customer_ids))
    if not ids or lake.current("bronze", "customers") is None or lake.current("silver", "customers") is None:
        return {}
    con = _sql_connect(lake)
    con.register("exit_ids", pa.table({"customer_id": ids}))
    addresses = _ACCEPTED_ADDRESS_SQL.format(silver=_scan(lake, "silver", "customers"),
                                             bronze=_scan(lake, "bronze", "customers"))
    sql = f"SELECT a.* FROM ({addresses}) a JOIN exit_ids USING (customer_id)"
    rows = con.execute(sql).fetchall()
    con.close()
    return {cid: (normalize_email(email), normalize_phone(phone)) for cid, email, phone in rows}
