"""Small lakes for activation tests: gold.customer_rfm, silver.customers and bronze.customers written
directly with Lake.write_arrow (no Spark)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from rfmlake.lake import Lake

SEGMENTS = ("Champions", "Loyal", "At Risk", "Hibernating")


def write_customers(lake: Lake, n: int, *, no_consent: set[int] = frozenset(), unknown_consent: set[int] = frozenset(),
                    no_email: set[int] = frozenset(), bad_email: set[int] = frozenset()) -> None:
    ids = [f"C{i:06d}" for i in range(n)]
    emails = [None if i in no_email else ("not-an-email" if i in bad_email else f" User{i}@Example.com ")
              for i in range(n)]
    opt_in = [None if i in unknown_consent else i not in no_consent for i in range(n)]
    loaded = datetime(2026, 1, 1, tzinfo=UTC)
    # Per customer: the record silver accepted, an older CRM record with a stale address, and a newer
    # record silver rejected (quarantined) with another address: only the accepted one may be used.
    bronze = pa.table({
        "customer_id": ids * 3,
        "email": emails + [f"old{i}@example.com" for i in range(n)] + [f"rejected{i}@example.com" for i in range(n)],
        "phone": [f"+46 70 {i:07d}" for i in range(n)] * 3,
        "updated_at": ["2026-01-01T00:00:00Z"] * n + ["2020-01-01T00:00:00Z"] * n + ["2026-05-01T00:00:00Z"] * n,
        "_source_file": ["customers/crm.csv"] * (3 * n),
        "_loaded_at": pa.array([loaded] * (3 * n), pa.timestamp("us", tz="UTC")),
        "_row_hash": [f"h{i}" for i in range(3 * n)],
    })
    lake.write_arrow("bronze", "customers", bronze)
    lake.write_arrow("silver", "customers", pa.table({
        "customer_id": ids, "has_email": [e is not None for e in emails], "has_phone": [True] * n,
        "marketing_opt_in": pa.array(opt_in, pa.bool_()),
        "_source_file": ["customers/crm.csv"] * n, "_row_hash": [f"h{i}" for i in range(n)],
    }))


def _last_order(customer_id: str) -> date:
    return date.fromordinal(date(2026, 5, 31).toordinal() - int(customer_id[1:]) % 365)


def write_rfm(lake: Lake, segments: dict[str, str], *, as_of: date = date(2026, 6, 1),
              monetary: dict[str, float] | None = None) -> str:
    """gold.customer_rfm with the given customer -> segment; returns the new version id."""
    ids = sorted(segments)
    monetary = monetary or {}
    table = pa.table({
        "customer_id": ids,
        "as_of_date": pa.array([as_of] * len(ids), pa.date32()),
        "recency_days": [(as_of - _last_order(c)).days for c in ids],
        "last_order_date": pa.array([_last_order(c) for c in ids], pa.date32()),
        "frequency": [1 + int(c[1:]) % 7 for c in ids],
        "monetary": [monetary.get(c, 10.0 + int(c[1:]) % 100) for c in ids],
        "avg_order_value": [monetary.get(c, 10.0 + int(c[1:]) % 100) / (1 + int(c[1:]) % 7) for c in ids],
        "r_score": [1 + int(c[1:]) % 5 for c in ids],
        "f_score": [1 + int(c[1:]) % 5 for c in ids],
        "m_score": [1 + int(c[1:]) % 5 for c in ids],
        "rfm_cell": ["555"] * len(ids),
        "rfm_segment": [segments[c] for c in ids],
        "cluster_id": [0] * len(ids),
        "cluster_label": ["high value"] * len(ids),
        "model_version": ["m1"] * len(ids),
    })
    return lake.write_arrow("gold", "customer_rfm", table).version


def round_robin(n: int, offset: int = 0) -> dict[str, str]:
    return {f"C{i:06d}": SEGMENTS[(i + offset) % len(SEGMENTS)] for i in range(n)}
