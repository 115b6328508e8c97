"""Audience filters compiled to one parameterized DuckDB query over the gold tables (the local
catalog's views: rfmlake.lake.catalog.connect), so counting an audience of millions reads only the
columns it filters on and never loads the customers into Python.

`customer_facts` is one row per person with a customer id, keyed by the primary customer id as every
per-person gold table is (docs/adr/0020): the scored buyers of gold.customer_rfm and, when dbt built
gold.customer_engagement, the people who never bought (their RFM, value and revenue columns are
null, so a filter on those matches buyers only). Each row has its value (gold.customer_value, when
the value stage ran), consent and country (gold.dim_customers), engagement segment
(gold.customer_engagement) and event counts (gold.customer_profile, when profiles were built). A
filter on a column whose table is missing matches nobody, and the page says why (`Facts.missing`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from rfmlake.audiences.model import AudienceFilters
from rfmlake.lake.duck import fetch

_CLV = re.compile(r"^predicted_clv_(\d+)d$")


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    schema, name = table.split(".")
    rows = fetch(con, "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?",
                       [schema, name]).fetchall()
    return {r[0] for r in rows}


@dataclass(frozen=True)
class Facts:
    """The `customer_facts` relation of one connection: its SQL and what it could not include."""

    sql: str
    clv_column: str | None  # gold.customer_value's predicted_clv_<h>d, if any
    has_value: bool
    has_engagement: bool  # event counts per customer (gold.customer_profile)
    has_consent: bool
    has_engagement_segments: bool = False  # gold.customer_engagement: people who never bought included
    missing: tuple[str, ...] = field(default=())  # filters that match nobody here, and why

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection) -> Facts:
        rfm = _columns(con, "gold.customer_rfm")
        if not rfm:
            from rfmlake.audiences.model import AudienceError

            raise AudienceError("gold.customer_rfm does not exist yet: run the pipeline first (rfmlake run)")
        value = _columns(con, "gold.customer_value")
        dim = _columns(con, "gold.dim_customers")
        profile = _columns(con, "gold.customer_profile")
        engagement = _columns(con, "gold.customer_engagement")
        clv = next((c for c in sorted(value) if _CLV.match(c)), None)
        has_engagement = {"event_count", "last_event_at"} <= profile
        has_segments = {"customer_id", "as_of_date", "engagement_segment"} <= engagement
        # The person's key and as_of: a buyer's from gold.customer_rfm, a person who never bought's
        # from gold.customer_engagement (anonymous people have no customer id and no address).
        key, as_of = ("coalesce(r.customer_id, e.customer_id)", "coalesce(r.as_of_date, e.as_of_date)") \
            if has_segments else ("r.customer_id", "r.as_of_date")
        select = [
            f"{key} AS customer_id", f"{as_of} AS as_of_date", "r.rfm_segment", "r.cluster_label", "r.r_score",
            "r.f_score", "r.m_score", "r.recency_days", "r.frequency", "CAST(r.monetary AS DOUBLE) AS monetary",
            "v.p_alive" if "p_alive" in value else "CAST(NULL AS DOUBLE) AS p_alive",
            f"CAST(v.{clv} AS DOUBLE) AS clv" if clv else "CAST(NULL AS DOUBLE) AS clv",
            "d.country_code" if "country_code" in dim else "CAST(NULL AS VARCHAR) AS country_code",
            "d.marketing_opt_in" if "marketing_opt_in" in dim else "CAST(NULL AS BOOLEAN) AS marketing_opt_in",
            "e.engagement_segment" if has_segments else "CAST(NULL AS VARCHAR) AS engagement_segment",
            "p.event_count" if has_engagement else "CAST(NULL AS BIGINT) AS event_count",
            f"date_diff('day', CAST(p.last_event_at AS DATE), {as_of}) AS days_since_event" if has_engagement
            else "CAST(NULL AS BIGINT) AS days_since_event",
        ]
        joins = []
        if has_segments:
            joins.append("FULL JOIN (SELECT customer_id, as_of_date, engagement_segment FROM gold.customer_engagement "
                         "WHERE customer_id IS NOT NULL) e ON e.customer_id = r.customer_id")
        if value:
            joins.append(f"LEFT JOIN gold.customer_value v ON v.customer_id = {key}")
        if dim:
            joins.append(f"LEFT JOIN gold.dim_customers d ON d.customer_id = {key}")
        if has_engagement:
            joins.append(f"LEFT JOIN gold.customer_profile p ON p.customer_id = {key}")
        sql = f"SELECT {', '.join(select)} FROM gold.customer_rfm r {' '.join(joins)}"
        return cls(sql, clv, bool(value), has_engagement, "marketing_opt_in" in dim, has_segments)

    def missing_for(self, filters: AudienceFilters) -> list[str]:
        out = []
        if filters.uses_value and not self.has_value:
            out.append("p_alive and CLV filters match nobody: gold.customer_value does not exist (the value "
                       "models were skipped or have not run)")
        if filters.engagement_segments and not self.has_engagement_segments:
            out.append("engagement segment filters match nobody: gold.customer_engagement does not exist (run the "
                       "pipeline's dbt stage)")
        if filters.uses_activity and not self.has_engagement:
            out.append("engagement filters match nobody: the lake has no event counts per customer "
                       "(gold.customer_profile)")
        if filters.consent != "any" and not self.has_consent:
            out.append("consent filters match nobody: gold.dim_customers does not exist")
        return out


def where_sql(filters: AudienceFilters) -> tuple[str, list[Any]]:
    """The WHERE clause over customer_facts and its parameters (values never enter the SQL text)."""
    clauses: list[str] = []
    params: list[Any] = []

    def among(column: str, values: tuple[str, ...]) -> None:
        if values:
            clauses.append(f"{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)

    among("rfm_segment", filters.segments)
    among("cluster_label", filters.clusters)
    among("engagement_segment", filters.engagement_segments)
    for name, column in (("r_score", "r_score"), ("f_score", "f_score"), ("m_score", "m_score"),
                         ("p_alive", "p_alive"), ("clv", "clv")):
        low, high = getattr(filters, f"{name}_min"), getattr(filters, f"{name}_max")
        if low is not None:
            clauses.append(f"{column} >= ?")
            params.append(low)
        if high is not None:
            clauses.append(f"{column} <= ?")
            params.append(high)
    if filters.min_events is not None:
        clauses.append("coalesce(event_count, 0) >= ?" if filters.min_events == 0 else "event_count >= ?")
        params.append(filters.min_events)
    if filters.active_within_days is not None:
        clauses.append("days_since_event <= ?")
        params.append(filters.active_within_days)
    among("country_code", filters.countries)
    if filters.consent == "opted_in":
        clauses.append("marketing_opt_in IS TRUE")
    elif filters.consent == "not_opted_in":
        clauses.append("marketing_opt_in IS NOT TRUE")
    return " AND ".join(clauses) or "TRUE", params


@dataclass(frozen=True)
class AudienceSize:
    customers: int
    revenue: float  # their net revenue to date (monetary), reporting currency
    clv: float | None  # their predicted CLV over the value horizon, when the value stage ran
    total_customers: int  # every customer_facts row: buyers and, with engagement, people who never bought
    as_of: str | None
    notes: tuple[str, ...] = ()

    @property
    def share(self) -> float:
        return self.customers / self.total_customers if self.total_customers else 0.0


def measure(con: duckdb.DuckDBPyConnection, filters: AudienceFilters) -> AudienceSize:
    """Count and revenue of the audience now: one aggregate query."""
    facts = Facts.of(con)
    where, params = where_sql(filters)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE {where}), coalesce(sum(monetary) FILTER (WHERE {where}), 0), "
        f"sum(clv) FILTER (WHERE {where}), count(*), CAST(max(as_of_date) AS VARCHAR) FROM ({facts.sql})",
        [*params, *params, *params]).fetchone()
    assert row is not None
    return AudienceSize(int(row[0]), float(row[1]), None if row[2] is None else float(row[2]), int(row[3]), row[4],
                        tuple(facts.missing_for(filters)))


def member_query(con: duckdb.DuckDBPyConnection, filters: AudienceFilters, columns: str = "customer_id"
                 ) -> tuple[str, list[Any]]:
    """A query for the audience's members (selected `columns` of customer_facts) and its parameters."""
    facts = Facts.of(con)
    where, params = where_sql(filters)
    return f"SELECT {columns} FROM ({facts.sql}) WHERE {where}", params
