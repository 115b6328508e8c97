"""The journeys' lake tables, derived from the journey store after every tick:

- gold.journey_assignments: one row per entry (journey, customer, entry date) with its group and
  variant and the hash bucket that decided it; partitioned by (journey_id, entry_date) and only
  appended to: an entry's assignment never changes (docs/adr/0010).
- gold.journey_results: per journey, group (the holdout and each variant) and day the journey ran:
  customers entered so far, messages sent, conversions (a completed order within the goal's days
  of entering, known by that day), revenue of those orders, the conversion rate with its interval,
  the lift over the holdout with its interval and p-value, revenue per customer and its lift, and
  the minimum detectable effect (rfmlake.journeys.stats).

The results read the entries, the orders and the store's sent counts per journey, variant and day
(JourneyStore.sent_counts), not the ledger: a run's cost does not grow with the days sent.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa

from rfmlake.journeys.assignment import HOLDOUT
from rfmlake.journeys.spec import JourneySet
from rfmlake.journeys.stats import compare
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake, TableRef
from rfmlake.lake.duck import fetch
from rfmlake.lake.tables import partition_key

ASSIGNMENTS_TABLE = "journey_assignments"
RESULTS_TABLE = "journey_results"
ASSIGNMENT_PARTITION_BY: tuple[str, ...] = ("journey_id", "entry_date")
MONEY = pa.decimal128(18, 2)

ASSIGNMENT_SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("group", pa.string()), ("variant", pa.string()), ("bucket", pa.float64()),
    ("salt", pa.string()), ("trigger", pa.string()), ("journey_id", pa.string()), ("entry_date", pa.date32()),
])
RESULT_SCHEMA = pa.schema([
    ("journey_id", pa.string()), ("journey_name", pa.string()), ("day", pa.date32()), ("variant", pa.string()),
    ("group", pa.string()), ("entered", pa.int64()), ("entered_on_day", pa.int64()), ("sent", pa.int64()),
    ("conversions", pa.int64()), ("revenue", MONEY), ("conversion_rate", pa.float64()),
    ("conversion_rate_low", pa.float64()), ("conversion_rate_high", pa.float64()), ("lift", pa.float64()),
    ("lift_low", pa.float64()), ("lift_high", pa.float64()), ("relative_lift", pa.float64()),
    ("p_value", pa.float64()), ("probability_better", pa.float64()), ("revenue_per_customer", pa.float64()),
    ("revenue_lift", pa.float64()), ("revenue_lift_low", pa.float64()), ("revenue_lift_high", pa.float64()),
    ("revenue_p_value", pa.float64()), ("minimum_detectable_effect", pa.float64()), ("significant", pa.bool_()),
    ("note", pa.string()), ("confidence_level", pa.float64()), ("goal_days", pa.int32()),
])


def write_assignments(lake: Lake, store: JourneyStore) -> TableRef:
    """Add the partitions of gold.journey_assignments the table lacks (the entries of the last
    tick, or of a tick whose table commit a crash lost); create the table empty if need be."""
    entries = store.entries()
    ref = lake.current("gold", ASSIGNMENTS_TABLE)
    have = {p.key for p in ref.partitions} if ref is not None and ref.is_partitioned else set()
    rows = [r for r in entries.to_pylist()
            if partition_key({"journey_id": r["journey_id"], "entry_date": r["entry_date"].isoformat()}) not in have]
    table = pa.Table.from_pylist([{k: r[k] for k in ASSIGNMENT_SCHEMA.names} for r in rows], schema=ASSIGNMENT_SCHEMA)
    if ref is not None and not table.num_rows:
        return ref
    return lake.write_partitions("gold", ASSIGNMENTS_TABLE, ASSIGNMENT_PARTITION_BY, table)


def journey_days(journeys: JourneySet, state: dict[str, Any], history_dates: list[date]) -> dict[str, list[date]]:
    """The as_of dates each journey has run on: from the first that admitted anyone to the latest
    run's (entries keep converting after a journey's end_date or while it is paused)."""
    out: dict[str, list[date]] = {}
    for journey in journeys.journeys:
        known = state.get("journeys", {}).get(journey.id, {})
        if not known.get("first_as_of") or not (state.get("as_of") or known.get("processed_through")):
            continue
        first = date.fromisoformat(known["first_as_of"])
        last = date.fromisoformat(state.get("as_of") or known["processed_through"])
        days = [d for d in history_dates if first <= d <= last] or [last]
        out[journey.id] = days
    return out


def compute_results(lake: Lake, store: JourneyStore, journeys: JourneySet, *, confidence: float = 0.95,
                    power: float = 0.8) -> pa.Table:
    from rfmlake.journeys.triggers import LakeView

    state = store.state()
    entries = store.entries(state)
    view = LakeView(lake)
    try:
        days = journey_days(journeys, state, view.history_dates())
        if not days or entries.num_rows == 0:
            return RESULT_SCHEMA.empty_table()
        outcomes = _outcomes(view, entries, journeys, days)
    finally:
        view.close()
    sent: dict[tuple[str, str], list[tuple[date, int]]] = defaultdict(list)
    for row in store.sent_counts(state).to_pylist():
        sent[(row["journey_id"], row["variant"])].append((row["tick_date"], row["sent"]))
    rows: list[dict[str, Any]] = []
    for journey in journeys.journeys:
        groups = [HOLDOUT, *(v.id for v in journey.variants)]
        for day in days.get(journey.id, []):
            cohort = outcomes.get((journey.id, day), {})
            holdout = cohort.get(HOLDOUT)
            for group in groups:
                revenue, converted, entered_on_day = cohort.get(group, (np.zeros(0), np.zeros(0, bool), 0))
                if group == HOLDOUT:
                    result = compare(revenue, converted, confidence=confidence, power=power)
                    note = "the control group: gets no message" if journey.holdout_percent else ""
                else:
                    h_revenue, h_converted = (holdout[0], holdout[1]) if holdout else (np.zeros(0), np.zeros(0, bool))
                    result = compare(revenue, converted, h_revenue, h_converted, confidence=confidence, power=power)
                    note = result.note
                    if not journey.holdout_percent:
                        note = "no holdout (holdout_percent 0): the lift cannot be measured"
                data = result.to_dict()
                rows.append({
                    **{k: data[k] for k in RESULT_SCHEMA.names if k in data},
                    "journey_id": journey.id, "journey_name": journey.name, "day": day, "variant": group,
                    "group": HOLDOUT if group == HOLDOUT else "treatment", "entered_on_day": entered_on_day,
                    "sent": sum(n for d, n in sent.get((journey.id, group), []) if d <= day),
                    "revenue": Decimal(str(round(float(revenue.sum()), 2))), "note": note,
                    "confidence_level": confidence, "goal_days": journey.goal.within_days,
                })
    return pa.Table.from_pylist(rows, schema=RESULT_SCHEMA) if rows else RESULT_SCHEMA.empty_table()


def _outcomes(view: Any, entries: pa.Table, journeys: JourneySet,
              days: dict[str, list[date]]) -> dict[tuple[str, date], dict[str, tuple[np.ndarray, np.ndarray, int]]]:
    """(journey, day) -> group -> (revenue per entry, converted per entry, entered on that day).
    Revenue and conversion count completed orders from the entry date, within the goal's days and
    before the day (the orders known at that as_of)."""
    goal = {j.id: j.goal.within_days for j in journeys.journeys}
    day_rows = [{"journey_id": j, "day": d, "goal_days": goal[j]} for j, ds in days.items() for d in ds]
    con = view.con
    con.register("_entries", entries.select(["journey_id", "customer_id", "entry_date", "variant"]))
    con.register("_days", pa.Table.from_pylist(day_rows, schema=pa.schema(
        [("journey_id", pa.string()), ("day", pa.date32()), ("goal_days", pa.int32())])))
    orders = ("LEFT JOIN gold.fct_orders o ON o.customer_id = e.customer_id AND o.status = 'completed' "
              "AND o.order_date >= e.entry_date AND o.order_date < e.entry_date + d.goal_days "
              "AND o.order_date < d.day") if "gold.fct_orders" in view.tables else ""
    amount = "coalesce(sum(CAST(o.amount_reporting AS DOUBLE)), 0.0)" if orders else "0.0"
    converted = "count(o.order_id) > 0" if orders else "false"
    table = fetch(con, f"""
        SELECT e.journey_id, d.day, e.variant, e.entry_date = d.day AS on_day,
               {amount} AS revenue, {converted} AS converted
        FROM _entries e JOIN _days d ON d.journey_id = e.journey_id AND e.entry_date <= d.day
        {orders}
        GROUP BY e.journey_id, d.day, e.variant, e.customer_id, e.entry_date
        ORDER BY e.journey_id, d.day, e.variant, e.customer_id, e.entry_date
    """).fetch_arrow_table()
    con.unregister("_entries")
    con.unregister("_days")
    out: dict[tuple[str, date], dict[str, tuple[np.ndarray, np.ndarray, int]]] = defaultdict(dict)
    if table.num_rows == 0:
        return out
    frame = table.to_pandas()
    for (journey_id, day, variant), group in frame.groupby(["journey_id", "day", "variant"], sort=False):
        key_day = day if isinstance(day, date) else day.date()
        out[(journey_id, key_day)][variant] = (group["revenue"].to_numpy(dtype=float),
                                               group["converted"].to_numpy(dtype=bool), int(group["on_day"].sum()))
    return out


def write_results(lake: Lake, store: JourneyStore, journeys: JourneySet, *, confidence: float = 0.95,
                  power: float = 0.8) -> TableRef:
    return lake.write_arrow("gold", RESULTS_TABLE,
                            compute_results(lake, store, journeys, confidence=confidence, power=power))
