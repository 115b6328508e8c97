"""`rfmlake journeys report`: gold.journey_results as text, the latest day per journey by default."""

from __future__ import annotations

from typing import Any

from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.results import RESULTS_TABLE
from rfmlake.lake import Lake
from rfmlake.lake.tables import parquet_scan


def load_results(lake: Lake, journey_id: str | None = None, *, all_days: bool = False) -> list[dict[str, Any]]:
    import duckdb

    ref = lake.current("gold", RESULTS_TABLE)
    if ref is None:
        raise JourneyError(f"the lake at {lake} has no gold.{RESULTS_TABLE}: run the journeys first "
                           "(rfmlake journeys run, or rfmlake run with settings journeys.dir)")
    where = ["TRUE"]
    params: list[Any] = []
    if journey_id is not None:
        where.append("journey_id = ?")
        params.append(journey_id)
    if not all_days:
        where.append("day = (SELECT max(day) FROM r m WHERE m.journey_id = r.journey_id)")
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"CREATE VIEW r AS SELECT * FROM {parquet_scan(ref)}")
        cursor = con.execute(f"SELECT * FROM r WHERE {' AND '.join(where)} "
                             "ORDER BY journey_id, day, \"group\" DESC, variant", params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()
    if journey_id is not None and not rows:
        raise JourneyError(f"gold.{RESULTS_TABLE} has no rows for journey {journey_id!r}")
    return rows


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}"


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def render_results(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no journey results yet"
    lines: list[str] = []
    header = (f"{'group':<10} {'entered':>8} {'sent':>6} {'conv':>5} {'rate [interval]':>22} "
              f"{'lift pts [interval]':>24} {'p':>7} {'P(better)':>9} {'rev/cust':>9} {'rev lift [interval]':>26}")
    current: tuple[str, Any] | None = None
    notes: list[str] = []
    for row in rows:
        key = (row["journey_id"], row["day"])
        if key != current:
            lines.extend(notes)
            notes = []
            if current is not None:
                lines.append("")
            current = key
            lines.append(f"{row['journey_id']} ({row['journey_name']}) on {row['day']}: goal a completed order "
                         f"within {row['goal_days']} days, {row['confidence_level']:.0%} intervals")
            lines.append(header)
        rate = f"{_pct(row['conversion_rate'])} [{_pct(row['conversion_rate_low'])}, " \
               f"{_pct(row['conversion_rate_high'])}]" if row["entered"] else "-"
        lift = f"{_points(row['lift'])} [{_points(row['lift_low'])}, {_points(row['lift_high'])}]" \
            if row["lift"] is not None else "-"
        rev = f"{_money(row['revenue_lift'])} [{_money(row['revenue_lift_low'])}, " \
              f"{_money(row['revenue_lift_high'])}]" if row["revenue_lift"] is not None else "-"
        p = "-" if row["p_value"] is None else f"{row['p_value']:.3g}"
        better = "-" if row["probability_better"] is None else f"{row['probability_better']:.2f}"
        lines.append(f"{row['variant']:<10} {row['entered']:>8,} {row['sent']:>6,} {row['conversions']:>5,} "
                     f"{rate:>22} {lift:>24} {p:>7} {better:>9} {_money(row['revenue_per_customer']):>9} {rev:>26}")
        if row["note"]:
            notes.append(f"  {row['variant']}: {row['note']}")
    lines.extend(notes)
    return "\n".join(lines)
