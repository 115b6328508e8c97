"""What the marketing app reads from the lake, as SQL over the local catalog (DuckDB views over the
committed gold tables, read in place: rfmlake.lake.catalog.connect). Nothing is loaded whole into
Python: every page runs aggregates or one page of rows.

Columns a page shows about customers are limited to what the signed-in role's governance persona
may SELECT (lakeformation/, the same rule `rfmlake sql --as` enforces): an analyst never gets raw
PII; an admin (data_engineer) sees the contact details of the accepted CRM record in bronze.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb

from rfmlake.governance.local import visible_columns
from rfmlake.governance.model import GovernanceConfig
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch

DIMENSIONS: dict[str, str] = {"rfm_segment": "RFM segment", "cluster_label": "cluster"}
MEMBER_COLUMNS: tuple[str, ...] = ("customer_id", "rfm_segment", "cluster_label", "r_score", "f_score", "m_score",
                                   "recency_days", "frequency", "monetary")
PAGE_SIZE = 50
CONTACT_COLUMNS: tuple[str, ...] = ("first_name", "last_name", "email", "phone")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class LakeReader:
    """One DuckDB database with views over the lake's current gold tables, rebuilt when a commit
    changes them; each request reads through its own cursor (DuckDB cursors are separate
    connections to the one database, safe across threads)."""

    def __init__(self, lake: Lake, zones: tuple[str, ...] = ("gold",)) -> None:
        self.lake = lake
        self.zones = zones
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._versions: dict[str, str] | None = None

    def _current_versions(self) -> dict[str, str]:
        return {ref.qualified_name: ref.version for zone in self.zones for ref in self.lake.tables(zone)}

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        from rfmlake.lake.catalog import connect

        versions = self._current_versions()
        with self._lock:
            if self._con is None or versions != self._versions:
                if self._con is not None:
                    self._con.close()
                self._con = connect(self.lake, zones=self.zones)
                self._versions = versions
            cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def has_table(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
                            [schema, name]).fetchone()[0])


def columns_of(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    schema, name = qualified.split(".")
    return [r[0] for r in fetch(con, "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND "
                                      "table_name = ? ORDER BY column_index", [schema, name]).fetchall()]


def reporting_currency(con: duckdb.DuckDBPyConnection, configured: str | None) -> str:
    """The currency gold's amounts are in: the one the last dbt build reported in (gold.fct_orders),
    else the configured one (settings.reporting_currency), else empty (no orders yet)."""
    if has_table(con, "gold.fct_orders") and "reporting_currency" in columns_of(con, "gold.fct_orders"):
        row = con.execute("SELECT reporting_currency FROM gold.fct_orders "
                          "WHERE reporting_currency IS NOT NULL LIMIT 1").fetchone()
        if row:
            return str(row[0])
    return configured or ""


def clv_column(con: duckdb.DuckDBPyConnection) -> str | None:
    if not has_table(con, "gold.customer_value"):
        return None
    return next((c for c in columns_of(con, "gold.customer_value")
                 if c.startswith("predicted_clv_") and c.endswith("d")), None)


# ------------------------------------------------------------------------------------------ segments
@dataclass(frozen=True)
class SegmentRow:
    name: str
    customers: int
    share: float
    revenue: float
    revenue_share: float
    avg_recency_days: float
    avg_frequency: float
    avg_monetary: float
    avg_p_alive: float | None
    clv: float | None


def segment_table(con: duckdb.DuckDBPyConnection, dimension: str) -> list[SegmentRow]:
    """Size, revenue and value of each segment (or cluster) of the latest run, largest first."""
    if dimension not in DIMENSIONS:
        raise KeyError(dimension)
    if not has_table(con, "gold.customer_rfm"):
        return []
    clv = clv_column(con)
    value = f"avg(v.p_alive), sum(v.{clv})" if clv else "NULL, NULL"
    join = "LEFT JOIN gold.customer_value v USING (customer_id)" if clv else ""
    result = fetch(con, f"""
        SELECT r.{dimension}, count(*), sum(r.monetary), avg(r.recency_days), avg(r.frequency), avg(r.monetary),
               {value}
        FROM gold.customer_rfm r {join}
        WHERE r.{dimension} IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1""").fetchall()
    customers = sum(r[1] for r in result) or 1
    revenue = float(sum(r[2] or 0 for r in result)) or 1.0
    return [SegmentRow(str(r[0]), int(r[1]), r[1] / customers, float(r[2] or 0), float(r[2] or 0) / revenue,
                       float(r[3]), float(r[4]), float(r[5]), None if r[6] is None else float(r[6]),
                       None if r[7] is None else float(r[7])) for r in result]


def latest_as_of(con: duckdb.DuckDBPyConnection) -> str | None:
    if not has_table(con, "gold.customer_rfm"):
        return None
    value = con.execute("SELECT max(as_of_date) FROM gold.customer_rfm").fetchone()[0]
    return None if value is None else str(value)


def history(con: duckdb.DuckDBPyConnection, dimension: str) -> tuple[list[str], dict[str, list[int]]]:
    """(as_of dates, segment -> customers at each date) from gold.segment_membership_history."""
    if not has_table(con, "gold.segment_membership_history"):
        return [], {}
    result = fetch(con, f"SELECT CAST(as_of_date AS VARCHAR), {dimension}, count(*) FROM "
                         f"gold.segment_membership_history WHERE {dimension} IS NOT NULL GROUP BY 1, 2 "
                         "ORDER BY 1, 2").fetchall()
    dates = sorted({r[0] for r in result})
    series: dict[str, list[int]] = {}
    for day, segment, n in result:
        series.setdefault(segment, [0] * len(dates))[dates.index(day)] = int(n)
    return dates, series


@dataclass(frozen=True)
class Migration:
    from_date: str
    to_date: str
    segments: list[str]
    counts: list[list[float]]  # from (rows) x to (columns)


def migration(con: duckdb.DuckDBPyConnection, dimension: str, segment: str | None = None) -> Migration | None:
    """Who moved between the last two runs (gold.segment_migration), as a from x to matrix."""
    if not has_table(con, "gold.segment_migration"):
        return None
    latest = con.execute("SELECT CAST(max(to_as_of_date) AS VARCHAR) FROM gold.segment_migration "
                         "WHERE dimension = ?", [dimension]).fetchone()[0]
    if latest is None:
        return None
    result = fetch(con, "SELECT CAST(from_as_of_date AS VARCHAR), from_segment, to_segment, sum(customers) "
                         "FROM gold.segment_migration WHERE dimension = ? AND CAST(to_as_of_date AS VARCHAR) = ? "
                         "GROUP BY ALL", [dimension, latest]).fetchall()
    if segment is not None:
        result = [r for r in result if segment in (r[1], r[2])]
    if not result:
        return None
    names = sorted({str(r[1]) for r in result if r[1] is not None} | {str(r[2]) for r in result if r[2] is not None})
    counts = [[0.0] * len(names) for _ in names]
    for _, before, after, n in result:
        if before is not None and after is not None:
            counts[names.index(str(before))][names.index(str(after))] += float(n)
    return Migration(result[0][0], latest, names, counts)


# ---------------------------------------------------------------------------------- members, profile
def visible(config: GovernanceConfig, persona: str, con: duckdb.DuckDBPyConnection, table: str,
            wanted: tuple[str, ...] | None = None) -> list[str]:
    zone, name = table.split(".")
    present = columns_of(con, table)
    allowed = visible_columns(config, persona, zone, name, present)
    return [c for c in (tuple(present) if wanted is None else wanted) if c in allowed]


def segment_members(con: duckdb.DuckDBPyConnection, config: GovernanceConfig, persona: str, dimension: str,
                    segment: str, page: int = 0) -> tuple[list[str], list[dict[str, Any]], int]:
    """One page of a segment's members, highest revenue first: (columns, rows, total members)."""
    columns = visible(config, persona, con, "gold.customer_rfm", MEMBER_COLUMNS)
    if "customer_id" not in columns:
        return [], [], 0
    total = con.execute(f"SELECT count(*) FROM gold.customer_rfm WHERE {dimension} = ?", [segment]).fetchone()[0]
    select = ", ".join(_quote(c) for c in columns)
    page_rows = rows(con, f"SELECT {select} FROM gold.customer_rfm WHERE {dimension} = ? "
                          "ORDER BY monetary DESC, customer_id LIMIT ? OFFSET ?",
                     [segment, PAGE_SIZE, page * PAGE_SIZE])
    return columns, page_rows, int(total)


@dataclass
class Profile:
    customer_id: str
    sections: dict[str, dict[str, Any]]  # title -> column -> value (only columns the persona may see)
    hidden: list[str]  # what the persona may not see, said plainly


PROFILE_SOURCES: tuple[tuple[str, str], ...] = (
    ("Scores and segment", "gold.customer_rfm"),
    ("Value", "gold.customer_value"),
    ("Customer", "gold.dim_customers"),
    ("Engagement", "gold.customer_profile"),
)
_ENGAGEMENT = ("last_event_at", "last_event_type", "event_count")


def profile(lake: Lake, con: duckdb.DuckDBPyConnection, config: GovernanceConfig, persona: str,
            customer_id: str) -> Profile | None:
    """A customer's profile as `persona` may see it, or None when no run scored them."""
    if not has_table(con, "gold.customer_rfm") or not con.execute(
            "SELECT count(*) FROM gold.customer_rfm WHERE customer_id = ?", [customer_id]).fetchone()[0]:
        return None
    sections: dict[str, dict[str, Any]] = {}
    hidden: list[str] = []
    for title, table in PROFILE_SOURCES:
        if not has_table(con, table):
            continue
        present = columns_of(con, table)
        wanted = [c for c in present if c != "customer_id"]
        if table == "gold.customer_profile":
            wanted = [c for c in wanted if c in _ENGAGEMENT]
        allowed = visible(config, persona, con, table, tuple(wanted))
        withheld = [c for c in wanted if c not in allowed]
        if withheld:
            hidden.append(f"{table}: {', '.join(withheld)}")
        if not allowed:
            continue
        select = ", ".join(_quote(c) for c in allowed)
        found = rows(con, f"SELECT {select} FROM {table} WHERE customer_id = ? LIMIT 1", [customer_id])
        if found:
            sections[title] = found[0]
    contact = _contact(lake, config, persona, customer_id)
    if contact is None:
        hidden.append("contact details (name, email, phone): raw personal data, which your role may not read")
    elif contact:
        sections["Contact (raw personal data)"] = contact
    return Profile(customer_id, sections, hidden)


def _contact(lake: Lake, config: GovernanceConfig, persona: str, customer_id: str) -> dict[str, Any] | None:
    """The accepted CRM record's clear contact details (bronze, the only zone holding them), for a
    persona whose grants reach them; None when they do not."""
    allowed = [c for c in CONTACT_COLUMNS if config.can_select(persona, "bronze", "customers", c)]
    if not allowed or not config.can_select(persona, "silver", "customers", "customer_id"):
        return None
    silver, bronze = lake.current("silver", "customers"), lake.current("bronze", "customers")
    if silver is None or bronze is None:
        return {}
    from rfmlake.lake.tables import parquet_scan

    con = duckdb.connect(":memory:")
    try:
        if not lake.is_local:  # read in place, as the catalog's connection does (default credentials)
            from rfmlake.lake.duckdb_s3 import enable_s3

            enable_s3(con, None)
        present = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {parquet_scan(bronze)}").fetchall()}
        select = ", ".join(f"b.{_quote(c)}" for c in allowed if c in present) or "NULL AS none"
        found = rows(con, f"""
            SELECT {select} FROM {parquet_scan(silver)} s
            JOIN {parquet_scan(bronze)} b ON b._row_hash = s._row_hash AND b._source_file = s._source_file
            WHERE s.customer_id = ? ORDER BY b._loaded_at DESC LIMIT 1""", [customer_id])
    finally:
        con.close()
    return found[0] if found else {}


def filter_options(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """The values the audience builder offers: segments, clusters, engagement segments (of people
    with a customer id: anonymous ones have no address) and countries of the latest run."""
    out: dict[str, list[str]] = {"segments": [], "clusters": [], "engagement_segments": [], "countries": []}
    if has_table(con, "gold.customer_engagement"):
        out["engagement_segments"] = [r[0] for r in fetch(con,
            "SELECT engagement_segment FROM gold.customer_engagement WHERE customer_id IS NOT NULL "
            "AND engagement_segment IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1").fetchall()]
    if has_table(con, "gold.customer_rfm"):
        out["segments"] = [r[0] for r in fetch(con,
            "SELECT rfm_segment FROM gold.customer_rfm WHERE rfm_segment IS NOT NULL GROUP BY 1 "
            "ORDER BY count(*) DESC").fetchall()]
        out["clusters"] = [r[0] for r in fetch(con,
            "SELECT cluster_label FROM gold.customer_rfm WHERE cluster_label IS NOT NULL GROUP BY 1 "
            "ORDER BY min(cluster_id)").fetchall()]
    if has_table(con, "gold.dim_customers") and "country_code" in columns_of(con, "gold.dim_customers"):
        out["countries"] = [r[0] for r in fetch(con,
            "SELECT d.country_code FROM gold.dim_customers d JOIN gold.customer_rfm r USING (customer_id) "
            "WHERE d.country_code IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1").fetchall()]
    return out
