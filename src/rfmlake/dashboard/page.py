"""The local segment dashboard: one static, self-contained HTML page (inline CSS and SVG, no script,
no network) with the charts of the QuickSight dashboard, computed from the same datasets
(rfmlake.dashboard.datasets) on the local catalog."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rfmlake import charts
from rfmlake.dashboard.datasets import (
    CUSTOMER_VALUE,
    ENGAGEMENT_SEGMENTS,
    JOURNEY_RESULTS,
    RFM_HEATMAP,
    SEGMENT_MIGRATION,
    SEGMENT_SUMMARY,
    Dataset,
)
from rfmlake.errors import RfmlakeError
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.duck import fetch

NEW, GONE = "(new)", "(gone)"
_CLV_COLUMN = re.compile(r"^predicted_clv_(\d+)d$")


@dataclass
class DashboardData:
    as_of_date: str
    model_version: str
    summary: pd.DataFrame
    heatmap: pd.DataFrame
    migration: pd.DataFrame | None  # None: the lake has no gold.segment_migration
    value: pd.DataFrame | None  # None: the lake has no gold.customer_value
    horizon_days: int | None = None
    notes: list[str] = field(default_factory=list)
    journeys: pd.DataFrame | None = None  # None: the lake has no gold.journey_results
    engagement: pd.DataFrame | None = None  # None: the lake has no gold.customer_engagement


def _present(lake: Lake, dataset: Dataset) -> bool:
    tables = {ref.qualified_name for ref in lake.tables()}
    return all(table in tables for table in dataset.tables)


def load_dashboard_data(lake: Lake) -> DashboardData:
    """Every dataset of the dashboard from the lake's current tables."""
    if not lake.root.is_dir():
        raise RfmlakeError(f"no lake at {lake} (run `rfmlake run` or `rfmlake demo` first)")
    if lake.current("gold", "customer_rfm") is None:
        raise RfmlakeError(f"the lake at {lake} has no gold.customer_rfm yet: run the pipeline "
                           "(`rfmlake run`) through the segmentation stage first")
    con = connect(lake)
    try:
        head = con.execute("SELECT CAST(max(as_of_date) AS varchar), max(model_version), count(*) "
                           "FROM gold.customer_rfm").fetchone()
        if head is None or not head[2]:
            raise RfmlakeError(f"gold.customer_rfm in {lake} is empty: no customer was scored")
        summary = fetch(con, SEGMENT_SUMMARY.render()).df()
        heat = fetch(con, RFM_HEATMAP.render()).df()
        migration = fetch(con, SEGMENT_MIGRATION.render()).df() if _present(lake, SEGMENT_MIGRATION) else None
        engagement = fetch(con, ENGAGEMENT_SEGMENTS.render()).df() if _present(lake, ENGAGEMENT_SEGMENTS) else None
        value = None
        horizon = None
        if _present(lake, CUSTOMER_VALUE):
            names = [row[0] for row in con.execute("DESCRIBE gold.customer_value").fetchall()]
            horizons = [int(m.group(1)) for m in map(_CLV_COLUMN.match, names) if m]
            if len(horizons) != 1:
                raise RfmlakeError("gold.customer_value should have exactly one predicted_clv_<N>d column, "
                                   f"found columns {names}")
            horizon = horizons[0]
            value = fetch(con, CUSTOMER_VALUE.render(horizon_days=horizon)).df()
        journeys = fetch(con, JOURNEY_RESULTS.render()).df() if _present(lake, JOURNEY_RESULTS) else None
    finally:
        con.close()
    return DashboardData(as_of_date=str(head[0]), model_version=str(head[1]), summary=summary, heatmap=heat,
                         migration=migration, value=value, horizon_days=horizon, journeys=journeys,
                         engagement=engagement)


def _heatmap_chart(heat: pd.DataFrame) -> str:
    n = int(max(heat["r_score"].max(), heat["f_score"].max(), 1))
    grid = {(int(r), int(f)): float(c) for r, f, c in heat[["r_score", "f_score", "customers"]].itertuples(index=False)}
    rows = list(range(n, 0, -1))
    cols = list(range(1, n + 1))
    values = [[grid.get((r, f), 0.0) for f in cols] for r in rows]
    return charts.heatmap("rfm_heatmap", RFM_HEATMAP.title, [f"R {r}" for r in rows], [f"F {f}" for f in cols],
                          values, row_title="recency score", column_title="frequency score (customers per cell)",
                          note="5 = most recent / most frequent. Empty cells have no customers.")


def _migration_chart(migration: pd.DataFrame | None, order: list[str]) -> str:
    title = "Migration between RFM segments"
    if migration is None:
        return charts.empty_chart("segment_migration", title, "the lake has no gold.segment_migration")
    if migration.empty:
        return charts.empty_chart("segment_migration", title,
                                  "only one scoring date so far: run the pipeline again with a later --as-of "
                                  "to see how customers move between segments")
    seen_from = set(migration["from_segment"])
    seen_to = set(migration["to_segment"])
    rows = [s for s in order if s in seen_from] + sorted(seen_from - set(order) - {NEW}) + \
        ([NEW] if NEW in seen_from else [])
    cols = [s for s in order if s in seen_to] + sorted(seen_to - set(order) - {GONE}) + \
        ([GONE] if GONE in seen_to else [])
    counts = {(a, b): float(c) for a, b, c in migration[["from_segment", "to_segment", "customers"]]
              .itertuples(index=False)}
    values = [[counts.get((a, b), 0.0) for b in cols] for a in rows]
    first = migration.iloc[0]
    dates = f"{pd.Timestamp(first['from_as_of_date']).date()} to {pd.Timestamp(first['to_as_of_date']).date()}"
    return charts.heatmap("segment_migration", f"{title}, {dates}", rows, cols, values,
                          row_title="from", column_title="to (customers)", cell=60, slanted_columns=True, wide=True,
                          note=f"{NEW}: not scored at the earlier date; {GONE}: not scored at the later one. "
                               "The diagonal stayed put.")


def engagement_charts(engagement: pd.DataFrame | None) -> list[str]:
    """People per engagement segment (gold.customer_engagement): those who never bought, the
    anonymous ones included, beside the buyers the RFM charts show. Nothing on a lake without it."""
    if engagement is None or engagement.empty:
        return []
    anonymous = int(engagement["anonymous_people"].sum())
    return [charts.labelled_hbar_chart(
        "engagement_segments", "People per engagement segment",
        [(str(s), float(n)) for s, n in engagement[["engagement_segment", "people"]].itertuples(index=False)],
        note=f"every person, buyers and people who never bought; {anonymous:,} known only by a device "
             "(docs/identity.md)")]


def value_charts(value: pd.DataFrame | None, horizon: int | None,
                  colors: dict[str, str] | None = None) -> list[str]:
    title = "Predicted customer value"
    if value is None:
        return [charts.empty_chart("value_distribution", title,
                                   "the lake has no gold.customer_value (the customer value stage did not run)")]
    clv = value["predicted_clv"].astype("float64").to_numpy()
    if clv.size == 0:
        return [charts.empty_chart("value_distribution", title,
                                   "gold.customer_value is empty: the customer value stage was skipped in the "
                                   "latest run (too little data, or a failed fit; the run summary notes say which)")]
    top = float(np.quantile(clv, 0.99)) if clv.size > 20 else float(clv.max())
    step = charts.nice_step(top, 20)
    bins = max(1, math.ceil(top / step))
    top = bins * step
    edges = np.arange(bins + 1) * step
    counts = np.histogram(np.clip(clv, 0.0, top), bins=edges)[0]
    above = int((clv > top).sum())
    note = f"predicted value over the next {horizon} days (reporting currency), per customer"
    if above:
        note += f"; the last bar also holds the {above} customers above {charts.format_number(top)}"
    colors = colors or {}
    by_segment = (value.assign(predicted_clv=value["predicted_clv"].astype("float64"))
                  .groupby("rfm_segment")["predicted_clv"].mean().sort_values(ascending=False))
    return [
        charts.histogram("value_distribution", f"{title}: distribution ({horizon} days)",
                         [float(e) for e in edges], [int(c) for c in counts],
                         x_title="predicted value per customer", note=note),
        charts.labelled_hbar_chart("value_by_segment", "Average predicted value per RFM segment",
                                    [(str(k), float(v)) for k, v in by_segment.items()], colors=colors),
    ]


def _optional(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value) \
        else float(value)


def _points(value: float) -> str:
    return f"{value * 100:+.1f}"


def journey_section(journeys: pd.DataFrame | None) -> str:
    """Per journey, on its latest day: conversion rate per group with its interval (the holdout's
    rate as reference), the lift of each variant in rate points with its interval, the rate over the
    days it ran, and the numbers with their notes (p-value, minimum detectable effect)."""
    if journeys is None:
        return ""
    head = ('<h2 id="journeys">Journeys</h2><p class="sub">gold.journey_results: customers who entered, '
            "messages sent, conversions (a completed order within the goal's days) and the lift over the "
            "holdout, which gets no message (docs/journeys.md).</p>")
    if journeys.empty:
        return head + '<p class="empty">no journey has admitted anyone yet</p>'
    parts: list[str] = []
    for journey_id, frame in journeys.groupby("journey_id", sort=True):
        days = sorted(frame["day"].unique())
        latest = frame[frame["day"] == days[-1]]
        name = str(latest["journey_name"].iloc[0])
        day = pd.Timestamp(days[-1]).date().isoformat()
        groups = [str(v) for v in latest["variant"]]
        colors = charts.category_colors(groups)
        holdout = latest[latest["group"] == "holdout"]
        reference = _optional(holdout["conversion_rate"].iloc[0]) if len(holdout) else None
        goal = int(latest["goal_days"].iloc[0])
        rates = [(str(r.variant), _optional(r.conversion_rate), _optional(r.conversion_rate_low),
                  _optional(r.conversion_rate_high)) for r in latest.itertuples(index=False)]
        treated = latest[latest["group"] == "treatment"]
        lifts = [(str(r.variant), _optional(r.lift), _optional(r.lift_low), _optional(r.lift_high))
                 for r in treated.itertuples(index=False)]
        charts_html = [
            charts.interval_chart(f"journey_rate_{journey_id}", f"{name}: conversion rate on {day}", rates,
                                  reference=reference, reference_label="holdout", colors=colors,
                                  note=f"a completed order within {goal} days of entering; "
                                       f"{float(latest['confidence_level'].iloc[0]):.0%} interval"),
            charts.interval_chart(f"journey_lift_{journey_id}", f"{name}: lift over the holdout", lifts,
                                  fmt=_points, reference=0.0, reference_label="no effect", colors=colors,
                                  note="treated rate minus holdout rate, in percentage points"),
        ]
        if len(days) > 1:
            labels = [pd.Timestamp(d).date().isoformat() for d in days]
            series = []
            for group in groups:
                by_day = frame[frame["variant"] == group].set_index("day")["conversion_rate"]
                series.append(charts.Series(group, [_optional(by_day.get(d)) for d in days]))
            charts_html.append(charts.figure(
                f"journey_days_{journey_id}", f"{name}: conversion rate by day",
                charts.line_chart(labels, series, title="conversion rate", x_label="as-of date",
                                  y_label="customers who ordered", percent=True, include_zero=True,
                                  frame=charts.Frame(width=540), name=f"journey_days_{journey_id}")))
        rows = []
        for r in latest.itertuples(index=False):
            lift = _optional(r.lift)
            lift_text = "-" if lift is None else (f"{_points(lift)} pts [{_points(_optional(r.lift_low) or 0.0)}, "
                                                   f"{_points(_optional(r.lift_high) or 0.0)}]")
            p = _optional(r.p_value)
            rpc = _optional(r.revenue_per_customer)
            rev_lift = _optional(r.revenue_lift)
            rate = _optional(r.conversion_rate)
            rows.append(
                f"<tr><td>{escape(str(r.variant))}</td><td>{int(r.entered):,}</td><td>{int(r.sent):,}</td>"
                f"<td>{int(r.conversions):,}</td>"
                f"<td>{'-' if rate is None else charts.format_percent(rate)}</td>"
                f"<td>{escape(lift_text)}</td><td>{'-' if p is None else f'{p:.3g}'}</td>"
                f"<td>{'-' if rpc is None else charts.format_number(rpc)}</td>"
                f"<td>{'-' if rev_lift is None else charts.format_number(rev_lift)}</td>"
                f"<td class=\"note\">{escape(str(r.note or ''))}</td></tr>")
        table = ('<table class="results"><tr><th>group</th><th>entered</th><th>sent</th><th>conversions</th>'
                 "<th>rate</th><th>lift</th><th>p</th><th>revenue / customer</th><th>revenue lift</th>"
                 f"<th>note</th></tr>{''.join(rows)}</table>")
        charts_html.append(charts.figure(f"journey_table_{journey_id}", f"{name}: results on {day}", table,
                                         wide=True))
        parts.append("".join(charts_html))
    return head + f'<div class="grid">{"".join(parts)}</div>'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1240px;color:#1a1a1a;
background:#fafafa;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} .sub{color:#555;margin:0 0 20px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:20px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:150px}
.card b{display:block;font-size:20px} .card span{color:#555;font-size:12px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(580px,1fr));gap:16px}
figure.chart.wide{grid-column:1/-1}
figure.chart{background:#fff;border:1px solid #ddd;border-radius:6px;margin:0;padding:12px;overflow-x:auto}
figcaption{font-weight:600;margin-bottom:8px} .note{color:#555;font-size:12px;margin:6px 0 0}
.empty{color:#8a5a00;background:#fff8e6;padding:12px;border-radius:4px}
h2{font-size:18px;margin:28px 0 4px} table.results{border-collapse:collapse;font-size:12px;width:100%}
table.results th,table.results td{border-bottom:1px solid #e5e5e5;padding:4px 6px;text-align:right}
table.results th:first-child,table.results td:first-child,table.results th:last-child,
table.results td.note{text-align:left}
footer{color:#777;font-size:12px;margin-top:24px}
"""


def _never_bought(engagement: pd.DataFrame) -> int:
    return int(engagement.loc[engagement["engagement_segment"] != "Buyer", "people"].sum())


def _card(label: str, value: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def render_dashboard(data: DashboardData, title: str = "rfmlake: customer segments") -> str:
    """The page as one HTML string (deterministic for the same data)."""
    summary = data.summary
    order = [str(s) for s in summary["rfm_segment"]]
    colors = charts.category_colors(order)
    customers = int(summary["customers"].sum())
    revenue = float(summary["revenue"].astype("float64").sum())
    by_share = summary.sort_values(["revenue_share", "rfm_segment"], ascending=[False, True])
    parts: list[Any] = [
        charts.labelled_hbar_chart("segment_sizes", "Customers per RFM segment",
                                    [(str(s), float(c)) for s, c in
                                     summary[["rfm_segment", "customers"]].itertuples(index=False)],
                                    colors=colors),
        charts.labelled_hbar_chart("revenue_share", "Share of revenue per RFM segment",
                                    [(str(s), float(v or 0.0)) for s, v in
                                     by_share[["rfm_segment", "revenue_share"]].itertuples(index=False)],
                                    fmt=charts.format_percent, note="revenue = monetary of gold.customer_rfm",
                                    colors=colors),
        _heatmap_chart(data.heatmap),
        _migration_chart(data.migration, order),
        *value_charts(data.value, data.horizon_days, colors),
        *engagement_charts(data.engagement),
    ]
    cards = "".join([
        _card("customers scored", f"{customers:,}"),
        _card("revenue (reporting currency)", charts.format_number(revenue)),
        _card("RFM segments", str(len(order))),
        _card("as-of date", data.as_of_date),
        _card("model version", data.model_version),
        *([_card("people who never bought", f"{_never_bought(data.engagement):,}")]
          if data.engagement is not None else []),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1><p class=\"sub\">gold.customer_rfm as of {escape(data.as_of_date)}; the same "
        "charts as the QuickSight segment dashboard (docs/analysts.md).</p>"
        f"<div class=\"cards\">{cards}</div><div class=\"grid\">{''.join(parts)}</div>"
        f"{journey_section(data.journeys)}"
        "<footer>Generated by <code>rfmlake dashboard</code> from the lake's current tables. "
        "Static page: no scripts, no network.</footer></body></html>\n"
    )


def write_dashboard(lake: Lake, out: Path | None = None) -> Path:
    """Write the dashboard for the lake; default <lake>/_system/dashboard/index.html. Returns the path."""
    target = Path(out) if out is not None else lake.system_dir / "dashboard" / "index.html"
    html = render_dashboard(load_dashboard_data(lake))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
