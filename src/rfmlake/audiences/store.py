"""gold.audiences: the saved audiences, one row per audience with its filters (JSON) and its size
when last saved. Members are not stored: activation and journeys resolve them against the gold
tables of the run they act on (`resolve_members`), so an audience follows its customers' scores.

The table is small (one row per audience) and rewritten whole on each save; the pipeline never
writes it, so saving does not wait for a run. Two saves never lose one another: locally they take a
lock, and every save checks, just before its commit, that the version it read is still the current
one (on S3, where no lock is shared between functions, a save that lost that race is refused and
says to try again).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from rfmlake.audiences.model import AUDIENCE_ID_PATTERN, AudienceError, AudienceFilters, parse_filters
from rfmlake.audiences.query import AudienceSize, member_query
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch

TABLE = ("gold", "audiences")
SCHEMA = pa.schema([
    ("audience_id", pa.string()), ("name", pa.string()), ("description", pa.string()),
    ("filters", pa.string()), ("customers", pa.int64()), ("revenue", pa.float64()), ("as_of_date", pa.string()),
    ("created_by", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
    ("updated_by", pa.string()), ("updated_at", pa.timestamp("us", tz="UTC")),
])


@dataclass(frozen=True)
class SavedAudience:
    audience_id: str
    name: str
    description: str
    filters: AudienceFilters
    customers: int
    revenue: float
    as_of_date: str | None
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    def row(self) -> dict:
        return {"audience_id": self.audience_id, "name": self.name, "description": self.description,
                "filters": json.dumps(self.filters.model_dump(mode="json", exclude_defaults=True), sort_keys=True),
                "customers": self.customers, "revenue": self.revenue, "as_of_date": self.as_of_date,
                "created_by": self.created_by, "created_at": self.created_at, "updated_by": self.updated_by,
                "updated_at": self.updated_at}


def _from_row(row: dict) -> SavedAudience:
    return SavedAudience(row["audience_id"], row["name"], row["description"] or "",
                         parse_filters(json.loads(row["filters"] or "{}")), int(row["customers"] or 0),
                         float(row["revenue"] or 0.0), row["as_of_date"], row["created_by"] or "",
                         row["created_at"], row["updated_by"] or "", row["updated_at"])


def load_audiences(lake: Lake) -> list[SavedAudience]:
    """Every saved audience, by name (none when the table does not exist yet)."""
    ref = lake.current(*TABLE)
    if ref is None:
        return []
    rows = lake.read_arrow(ref).to_pylist()
    return sorted((_from_row(r) for r in rows), key=lambda a: a.name.lower())


def get_audience(lake: Lake, audience_id: str) -> SavedAudience:
    for audience in load_audiences(lake):
        if audience.audience_id == audience_id:
            return audience
    raise AudienceError(f"no saved audience {audience_id!r} in gold.audiences")


def _lock(lake: Lake):  # noqa: ANN202 - a context manager
    from contextlib import nullcontext

    from rfmlake.lake.locks import exclusive_lock

    if not lake.is_local:  # S3: the version check in save_audience
        return nullcontext()
    return exclusive_lock(lake.system_dir / "app" / "audiences.lock",
                          AudienceError("another save of an audience is under way; try again"))


def save_audience(lake: Lake, *, audience_id: str, name: str, description: str, filters: AudienceFilters,
                  size: AudienceSize, actor: str, replace: bool = False, now: datetime | None = None) -> SavedAudience:
    """Add (or, with `replace`, update) a saved audience and commit gold.audiences."""
    import re

    if not re.match(AUDIENCE_ID_PATTERN, audience_id):
        raise AudienceError(f"audience id {audience_id!r} must be lower-case letters, digits and '_', "
                            "starting with a letter")
    name = name.strip()
    if not name or len(name) > 120:
        raise AudienceError("an audience needs a name of 1 to 120 characters")
    now = now or datetime.now(UTC)
    with _lock(lake):
        read = lake.current(*TABLE)
        existing = {a.audience_id: a for a in load_audiences(lake)}
        before = existing.get(audience_id)
        if before is not None and not replace:
            raise AudienceError(f"an audience {before.name!r} with id {audience_id!r} exists already; "
                                "choose another name")
        if any(a.name.lower() == name.lower() and a.audience_id != audience_id for a in existing.values()):
            raise AudienceError(f"an audience named {name!r} exists already")
        saved = SavedAudience(audience_id, name, description.strip()[:500], filters, size.customers, size.revenue,
                              size.as_of, before.created_by if before else actor,
                              before.created_at if before else now, actor, now)
        existing[audience_id] = saved
        table = pa.Table.from_pylist([a.row() for a in sorted(existing.values(), key=lambda a: a.audience_id)],
                                     schema=SCHEMA)
        version = lake.new_version(*TABLE)
        lake.write_version(version, table)
        now_current = lake.current(*TABLE)
        if (now_current.version if now_current else None) != (read.version if read else None):
            raise AudienceError("another audience was saved at the same time; save again")
        lake.commit(*TABLE, version)
    return saved


def resolve_members(lake: Lake, audience_id: str) -> list[str]:
    """The customer ids the saved audience holds in the lake's current gold tables, sorted."""
    from rfmlake.lake.catalog import connect

    audience = get_audience(lake, audience_id)
    con = connect(lake, zones=("gold",))
    try:
        sql, params = member_query(con, audience.filters)
        return [r[0] for r in fetch(con, f"{sql} ORDER BY customer_id", params).fetchall()]
    finally:
        con.close()
