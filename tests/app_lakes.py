"""A hand-checkable lake for the marketing app: the analytics test lake (six scored customers A, C,
D, E, F, G; two segmentation dates) plus consent and country (gold.dim_customers), engagement
(gold.customer_profile) and the CRM records (silver and bronze customers, with clear contact
details only in bronze). Expected audience sizes in the tests are worked out from these rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa

from analytics_lakes import build_analytics_lake
from rfmlake.lake import Lake

# customer_id, country_code, marketing_opt_in, event_count, last_event_at (as_of is 2024-05-01)
CUSTOMERS = [
    ("A", "DE", True, 5, "2024-04-25"),   # 6 days before as_of
    ("C", "DE", True, 0, None),
    ("D", "FR", None, 2, "2024-03-01"),   # 61 days
    ("E", "FR", False, 10, "2024-04-30"),  # 1 day
    ("F", "DE", True, None, None),
    ("G", "SE", True, 1, "2023-12-01"),
]
CONTACT = {"A": ("anna@example.com", "Anna"), "C": ("carl@example.com", "Carl")}


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def build_app_lake(root: Path, *, with_value: bool = True, with_profile: bool = True) -> Lake:
    lake = build_analytics_lake(root, with_value=with_value)
    ids = [c[0] for c in CUSTOMERS]
    lake.write_arrow("gold", "dim_customers", pa.table({
        "customer_id": ids, "email_token": [f"tok-{i}" for i in ids], "country_code": [c[1] for c in CUSTOMERS],
        "marketing_opt_in": pa.array([c[2] for c in CUSTOMERS], pa.bool_()),
    }))
    if with_profile:
        lake.write_arrow("gold", "customer_profile", pa.table({
            "customer_id": ids, "as_of_date": [date(2024, 5, 1)] * len(ids),
            "event_count": pa.array([c[3] for c in CUSTOMERS], pa.int32()),
            "last_event_at": pa.array([_ts(c[4]) for c in CUSTOMERS], pa.timestamp("us", tz="UTC")),
            "last_event_type": ["page_view" if c[4] else None for c in CUSTOMERS],
        }))
    loaded = datetime(2024, 5, 1, tzinfo=UTC)
    lake.write_arrow("silver", "customers", pa.table({
        "customer_id": ids, "email_token": [f"tok-{i}" for i in ids], "marketing_opt_in": [c[2] for c in CUSTOMERS],
        "_source_file": ["customers.csv"] * len(ids), "_row_hash": [f"h{i}" for i in ids],
    }))
    lake.write_arrow("bronze", "customers", pa.table({
        "customer_id": ids, "email": [CONTACT.get(i, (None, None))[0] for i in ids],
        "first_name": [CONTACT.get(i, (None, None))[1] for i in ids], "phone": [None] * len(ids),
        "last_name": [None] * len(ids),
        "_source_file": ["customers.csv"] * len(ids), "_row_hash": [f"h{i}" for i in ids],
        "_loaded_at": [loaded] * len(ids),
    }, schema=pa.schema([("customer_id", pa.string()), ("email", pa.string()), ("first_name", pa.string()),
                         ("phone", pa.string()), ("last_name", pa.string()), ("_source_file", pa.string()),
                         ("_row_hash", pa.string()), ("_loaded_at", pa.timestamp("us", tz="UTC"))])))
    return lake


def write_ingest_results(lake: Lake, quarantined: dict[str, dict[str, int]]) -> None:
    """bronze.quarantine with `quarantined` (entity -> reason -> rows) and a balanced
    silver.ingest_reconciliation (one file per entity): what a run summary's quarantine counts and
    reconciliation are read from (rfmlake.pipeline.runner.summarize_lake)."""
    from rfmlake.ingest.bronze import PARTITION_BY
    from rfmlake.ingest.silver import QUARANTINE_SCHEMA, RECONCILIATION_SCHEMA

    loaded = datetime(2026, 11, 30, tzinfo=UTC)
    rows = [{"entity": entity, "source_file": f"landing/{entity}/{entity}.csv", "reason": reason, "detail": "",
             "raw": "{}", "record_key": f"{entity}-{reason}-{i}", "_row_hash": f"{entity}{reason}{i}",
             "_loaded_at": loaded, "_load_date": "2026-11-30", "_file": f"{entity}.csv"}
            for entity, reasons in quarantined.items() for reason, n in reasons.items() for i in range(n)]
    lake.write_partitions("bronze", "quarantine", PARTITION_BY, pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA))
    lake.write_arrow("silver", "ingest_reconciliation", pa.Table.from_pylist(
        [{"entity": entity, "source_file": f"landing/{entity}/{entity}.csv", "rows_in": 10 + sum(reasons.values()),
          "rows_accepted": 10, "rows_quarantined": sum(reasons.values()), "file_key": entity, "ingest_id": entity,
          "_loaded_at": loaded} for entity, reasons in quarantined.items()], schema=RECONCILIATION_SCHEMA))
