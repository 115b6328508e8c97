"""The segment dashboard's datasets: one SQL query each, shared by the local HTML dashboard (run on
the DuckDB catalog) and the QuickSight datasets (custom SQL on Athena), so both show the same numbers.

Templates name zones as `${gold}` (see rfmlake.analytics.saved_queries) and the value column as
`${clv_column}` (gold.customer_value names it after the horizon: predicted_clv_365d).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from rfmlake.analytics.saved_queries import get_query
from rfmlake.lake.tables import ZONES


@dataclass(frozen=True)
class Dataset:
    name: str
    title: str
    template: str
    # (column, QuickSight input column type) in SELECT order
    columns: tuple[tuple[str, str], ...]
    tables: tuple[str, ...]
    optional: bool = False  # the dashboard shows the rest when this dataset's tables are absent

    def render(self, prefix: str = "", horizon_days: int = 365) -> str:
        values = {zone: f"{prefix}{zone}" for zone in ZONES}
        values["clv_column"] = f"predicted_clv_{horizon_days}d"
        return string.Template(self.template).substitute(values)


SEGMENT_SUMMARY = Dataset(
    name="segment_summary",
    title="RFM segments: customers and revenue",
    template="""SELECT rfm_segment,
       count(*) AS customers,
       CAST(sum(monetary) AS decimal(18, 2)) AS revenue,
       round(CAST(count(*) AS double) / sum(count(*)) OVER (), 4) AS customer_share,
       round(CAST(sum(monetary) AS double) / nullif(CAST(sum(sum(monetary)) OVER () AS double), 0), 4) AS revenue_share
FROM ${gold}.customer_rfm
GROUP BY rfm_segment
ORDER BY customers DESC, rfm_segment""",
    columns=(("rfm_segment", "STRING"), ("customers", "INTEGER"), ("revenue", "DECIMAL"),
             ("customer_share", "DECIMAL"), ("revenue_share", "DECIMAL")),
    tables=("gold.customer_rfm",),
)

RFM_HEATMAP = Dataset(
    name="rfm_heatmap",
    title="Customers by recency score x frequency score",
    template="""SELECT CAST(r_score AS integer) AS r_score, CAST(f_score AS integer) AS f_score, count(*) AS customers
FROM ${gold}.customer_rfm
GROUP BY r_score, f_score
ORDER BY r_score DESC, f_score""",
    columns=(("r_score", "INTEGER"), ("f_score", "INTEGER"), ("customers", "INTEGER")),
    tables=("gold.customer_rfm",),
)

SEGMENT_MIGRATION = Dataset(
    name="segment_migration",
    title=get_query("segment_migration").title,
    template=get_query("segment_migration").template,
    columns=(("from_as_of_date", "DATETIME"), ("to_as_of_date", "DATETIME"), ("from_segment", "STRING"),
             ("to_segment", "STRING"), ("customers", "INTEGER"), ("share_of_from", "DECIMAL")),
    tables=get_query("segment_migration").tables,
)

CUSTOMER_VALUE = Dataset(
    name="customer_value",
    title="Predicted customer value",
    template="""SELECT v.customer_id,
       r.rfm_segment,
       v.p_alive,
       CAST(v.${clv_column} AS double) AS predicted_clv
FROM ${gold}.customer_value AS v
JOIN ${gold}.customer_rfm AS r ON r.customer_id = v.customer_id
ORDER BY v.customer_id""",
    columns=(("customer_id", "STRING"), ("rfm_segment", "STRING"), ("p_alive", "DECIMAL"),
             ("predicted_clv", "DECIMAL")),
    tables=("gold.customer_rfm", "gold.customer_value"),
    optional=True,
)

JOURNEY_RESULTS = Dataset(
    name="journey_results",
    title="Journeys: conversion and lift against the holdout",
    # latest_day (1 on each journey's last day, else 0) lets QuickSight filter to the current results;
    # journey ("<name> (<id>)") is what the visuals split by: one per journey id, named (two journeys
    # may share a name)
    template="""SELECT journey_id, journey_name, journey_name || ' (' || journey_id || ')' AS journey, day, variant,
       "group", entered, sent, conversions,
       CAST(revenue AS double) AS revenue, conversion_rate, conversion_rate_low, conversion_rate_high,
       lift, lift_low, lift_high, p_value, revenue_per_customer, revenue_lift, revenue_lift_low,
       revenue_lift_high, minimum_detectable_effect, significant, note, goal_days, confidence_level,
       CASE WHEN day = max(day) OVER (PARTITION BY journey_id) THEN 1 ELSE 0 END AS latest_day
FROM ${gold}.journey_results
ORDER BY journey_id, day, "group" DESC, variant""",
    columns=(("journey_id", "STRING"), ("journey_name", "STRING"), ("journey", "STRING"), ("day", "DATETIME"),
             ("variant", "STRING"),
             ("group", "STRING"), ("entered", "INTEGER"), ("sent", "INTEGER"), ("conversions", "INTEGER"),
             ("revenue", "DECIMAL"), ("conversion_rate", "DECIMAL"), ("conversion_rate_low", "DECIMAL"),
             ("conversion_rate_high", "DECIMAL"), ("lift", "DECIMAL"), ("lift_low", "DECIMAL"),
             ("lift_high", "DECIMAL"), ("p_value", "DECIMAL"), ("revenue_per_customer", "DECIMAL"),
             ("revenue_lift", "DECIMAL"), ("revenue_lift_low", "DECIMAL"), ("revenue_lift_high", "DECIMAL"),
             ("minimum_detectable_effect", "DECIMAL"), ("significant", "BOOLEAN"), ("note", "STRING"),
             ("goal_days", "INTEGER"), ("confidence_level", "DECIMAL"), ("latest_day", "INTEGER")),
    tables=("gold.journey_results",),
    optional=True,
)

ENGAGEMENT_SEGMENTS = Dataset(
    name="engagement_segments",
    title="People per engagement segment",
    # Every person (docs/identity.md), buyers and people who never bought, the anonymous ones too.
    template="""SELECT engagement_segment,
       count(*) AS people,
       sum(CASE WHEN is_anonymous THEN 1 ELSE 0 END) AS anonymous_people,
       sum(sessions_90d) AS sessions_90d,
       sum(carts_abandoned_90d) AS carts_abandoned_90d
FROM ${gold}.customer_engagement
GROUP BY engagement_segment
ORDER BY people DESC, engagement_segment""",
    columns=(("engagement_segment", "STRING"), ("people", "INTEGER"), ("anonymous_people", "INTEGER"),
             ("sessions_90d", "INTEGER"), ("carts_abandoned_90d", "INTEGER")),
    tables=("gold.customer_engagement",),
    optional=True,
)

# The QuickSight analysis has a visual for each of these (rfmlake.dashboard.quicksight); the local
# page shows the same data.
DATASETS: tuple[Dataset, ...] = (SEGMENT_SUMMARY, RFM_HEATMAP, SEGMENT_MIGRATION, ENGAGEMENT_SEGMENTS, CUSTOMER_VALUE,
                                 JOURNEY_RESULTS)
