"""What the engine reads from the lake, through DuckDB views over the gold tables: who triggered a
journey at an as_of date (gold.segment_membership_history for RFM segments and clusters,
gold.engagement_segment_history for engagement segments, each partitioned by as_of_date or not),
who matches a condition (gold.customer_rfm, gold.customer_value, gold.dim_customers,
gold.customer_engagement), who ordered since entering (gold.fct_orders) and what a message may say
about each customer, their recommended products included (gold.product_recommendations).

Customers are people keyed by their primary customer id (docs/adr/0020): `customer_facts` holds every
scored buyer and every person with a customer id in gold.customer_engagement, so people who never
bought can enter a journey through its engagement columns (their RFM columns are null, and a
condition on a null never holds)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

import pyarrow as pa

from rfmlake.journeys.errors import JourneyError
from rfmlake.journeys.spec import (
    CUSTOMER_COLUMNS,
    ENGAGEMENT_COLUMNS,
    FIELD_MAX,
    RECOMMENDATION_SLOTS,
    RECOMMENDED_IN_LIST,
    RFM_COLUMNS,
    VALUE_COLUMNS,
    Condition,
    Journey,
    SegmentEntered,
    SegmentExited,
    SegmentMigrated,
    ValueCondition,
)
from rfmlake.lake import Lake
from rfmlake.lake.duck import fetch

HISTORY = "gold.segment_membership_history"
ENGAGEMENT = "gold.customer_engagement"
ENGAGEMENT_HISTORY = "gold.engagement_segment_history"
_HORIZON_COLUMNS = ("predicted_clv", "expected_orders", "discounted_margin_clv")
_HORIZON = re.compile(r"^predicted_clv_(\d+)d$")


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def condition_sql(condition: Condition, alias: str = "c") -> str:
    column = f'{alias}."{condition.column}"'
    if condition.op in ("in", "not in"):
        values = condition.value if isinstance(condition.value, list) else [condition.value]
        listed = ", ".join(_literal(v) for v in values)
        return f"{column} {condition.op.upper()} ({listed})"
    return f"{column} {condition.op} {_literal(condition.value)}"


def conditions_sql(conditions: Sequence[Condition], alias: str = "c") -> str:
    return " AND ".join(condition_sql(c, alias) for c in conditions) or "TRUE"


class LakeView:
    """A DuckDB connection with the gold tables the journeys read as views, plus `customer_facts`:
    one row per scored customer with the RFM, value and customer columns conditions may name."""

    def __init__(self, lake: Lake) -> None:
        from rfmlake.lake.catalog import connect

        self.lake = lake
        if lake.current("gold", "customer_rfm") is None:
            raise JourneyError(f"journeys need gold.customer_rfm, which does not exist in the lake at {lake}; "
                               "run the pipeline first (rfmlake run)")
        self.con = connect(lake, zones=("gold",))
        self.tables = {ref.qualified_name for ref in lake.tables("gold")}
        self.horizon = self._horizon()
        self.con.execute(f"CREATE TEMP VIEW customer_facts AS {self._facts_sql()}")
        self.as_of: date = self.con.execute("SELECT max(as_of_date) FROM gold.customer_rfm").fetchone()[0]
        if self.as_of is None:
            raise JourneyError("gold.customer_rfm is empty: no customer was scored, so no journey can run")
        self.value_as_of: date | None = None
        if self.horizon is not None:
            self.value_as_of = self.con.execute("SELECT max(as_of_date) FROM gold.customer_value").fetchone()[0]
        self.engagement_dates = self._engagement_dates()

    def close(self) -> None:
        self.con.close()

    def _horizon(self) -> int | None:
        if "gold.customer_value" not in self.tables:
            return None
        names = [row[0] for row in self.con.execute("DESCRIBE gold.customer_value").fetchall()]
        horizons = [int(m.group(1)) for m in map(_HORIZON.match, names) if m]
        return horizons[0] if len(horizons) == 1 else None

    def _columns(self, table: str) -> set[str]:
        if table not in self.tables:
            return set()
        return {row[0] for row in self.con.execute(f"DESCRIBE {table}").fetchall()}

    def _facts_sql(self) -> str:
        """A column a condition may name is NULL where its table lacks it (a lake whose value stage
        never ran): a condition on it then matches nobody."""
        def pick(alias: str, available: set[str], names: tuple[str, ...], rename: dict[str, str]) -> list[str]:
            out = []
            for name in names:
                source = rename.get(name, name)
                out.append(f"{alias}.{source} AS {name}" if source in available else f"NULL AS {name}")
            return out

        horizon = {c: f"{c}_{self.horizon}d" for c in _HORIZON_COLUMNS} if self.horizon is not None else {}
        value_columns = self._columns("gold.customer_value")
        customer_columns = self._columns("gold.dim_customers")
        engagement_columns = self._columns(ENGAGEMENT)
        select = [*pick("r", self._columns("gold.customer_rfm"), RFM_COLUMNS, {}),
                  *pick("v", value_columns, VALUE_COLUMNS, horizon),
                  *pick("d", customer_columns, CUSTOMER_COLUMNS, {}),
                  *pick("e", engagement_columns, ENGAGEMENT_COLUMNS, {})]
        key = "r.customer_id"
        joins = []
        if engagement_columns:  # people with a customer id who never bought are customers too
            key = "coalesce(r.customer_id, e.customer_id)"
            joins.append(f"FULL JOIN (SELECT * FROM {ENGAGEMENT} WHERE customer_id IS NOT NULL) e "
                         "ON e.customer_id = r.customer_id")
        if value_columns:
            joins.append(f"LEFT JOIN gold.customer_value v ON v.customer_id = {key}")
        if customer_columns:
            joins.append(f"LEFT JOIN gold.dim_customers d ON d.customer_id = {key}")
        return f"SELECT {key} AS customer_id, {', '.join(select)} FROM gold.customer_rfm r {' '.join(joins)}"

    def _engagement_dates(self) -> list[date]:
        """The as_of dates whose engagement segments the lake remembers."""
        if ENGAGEMENT_HISTORY in self.tables:
            rows = fetch(self.con, f"SELECT DISTINCT as_of_date FROM {ENGAGEMENT_HISTORY} ORDER BY 1").fetchall()
            return [r[0] for r in rows]
        if ENGAGEMENT in self.tables:  # the current segments are the only date known
            rows = fetch(self.con, f"SELECT DISTINCT as_of_date FROM {ENGAGEMENT}").fetchall()
            return sorted(r[0] for r in rows)
        return []

    # -- history ---------------------------------------------------------------------------------
    def history_dates(self) -> list[date]:
        if HISTORY not in self.tables:
            return [self.as_of]
        rows = fetch(self.con, f"SELECT DISTINCT as_of_date FROM {HISTORY} ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def _members(self, day: date, dimension: str, segments: Sequence[str]) -> str:
        listed = ", ".join(_literal(s) for s in segments)
        if dimension == "engagement_segment":
            table = ENGAGEMENT_HISTORY if ENGAGEMENT_HISTORY in self.tables else ENGAGEMENT
            return (f"SELECT customer_id FROM {table} WHERE as_of_date = DATE '{day.isoformat()}' "
                    f"AND customer_id IS NOT NULL AND engagement_segment IN ({listed})")
        if HISTORY not in self.tables:  # a lake with one run: the current scores are the history
            return f"SELECT customer_id FROM gold.customer_rfm WHERE {dimension} IN ({listed})"
        return (f"SELECT customer_id FROM {HISTORY} WHERE as_of_date = DATE '{day.isoformat()}' "
                f"AND {dimension} IN ({listed})")

    def _scored(self, day: date) -> str:
        if HISTORY not in self.tables:
            return "SELECT customer_id FROM gold.customer_rfm"
        return f"SELECT customer_id FROM {HISTORY} WHERE as_of_date = DATE '{day.isoformat()}'"

    def triggered(self, journey: Journey, day: date, previous: date | None, *, first_run: bool) -> dict[str, str]:
        """customer id -> what triggered them, for the journey's trigger at `day` (against the as_of
        date before it, `previous`)."""
        trigger = journey.trigger
        if isinstance(trigger, ValueCondition):
            # gold.customer_value and gold.customer_engagement hold only the latest run
            named = {c.column for c in trigger.where}
            if day != self.as_of or (named & set(VALUE_COLUMNS) and self.value_as_of != day) \
                    or (named & set(ENGAGEMENT_COLUMNS) and day not in self.engagement_dates):
                return {}
            sql = f"SELECT customer_id FROM customer_facts c WHERE {conditions_sql(trigger.where)}"
            label = "value condition"
        elif trigger.dimension == "engagement_segment" and day not in self.engagement_dates:
            return {}  # no engagement segments recorded for that date
        elif isinstance(trigger, SegmentEntered):
            if trigger.dimension == "engagement_segment" and previous not in self.engagement_dates:
                previous = None  # a date before engagement was recorded: nothing to compare with
            now = self._members(day, trigger.dimension, [trigger.segment])
            label = f"entered {trigger.segment}"
            if first_run and trigger.include_existing:
                sql = now
                label = f"in {trigger.segment}"
            elif previous is None:
                return {}  # nobody has been seen entering before there is an earlier date
            else:
                sql = f"{now} EXCEPT {self._members(previous, trigger.dimension, [trigger.segment])}"
        elif isinstance(trigger, SegmentExited):
            if previous is None or (trigger.dimension == "engagement_segment"
                                    and previous not in self.engagement_dates):
                return {}
            sql = (f"{self._members(previous, trigger.dimension, [trigger.segment])} EXCEPT "
                   f"{self._members(day, trigger.dimension, [trigger.segment])}")
            label = f"exited {trigger.segment}"
        elif isinstance(trigger, SegmentMigrated):
            history = ENGAGEMENT_HISTORY if trigger.dimension == "engagement_segment" else HISTORY
            if previous is None or history not in self.tables or (
                    trigger.dimension == "engagement_segment" and previous not in self.engagement_dates):
                return {}
            before = self._members(previous, trigger.dimension, trigger.from_segments).replace(
                "SELECT customer_id", f"SELECT customer_id, {trigger.dimension} AS segment", 1)
            after = self._members(day, trigger.dimension, trigger.to_segments).replace(
                "SELECT customer_id", f"SELECT customer_id, {trigger.dimension} AS segment", 1)
            rows = fetch(self.con, f"SELECT a.customer_id, a.segment, b.segment FROM ({before}) a "
                                    f"JOIN ({after}) b USING (customer_id) ORDER BY 1").fetchall()
            return {cid: f"migrated {old} -> {new}" for cid, old, new in rows}
        else:  # pragma: no cover - the union is exhaustive
            raise JourneyError(f"unknown trigger {trigger!r}")
        return {row[0]: label for row in fetch(self.con, f"SELECT customer_id FROM ({sql}) ORDER BY 1").fetchall()}

    def matching(self, customer_ids: Sequence[str], conditions: Sequence[Condition]) -> set[str]:
        """The customers among `customer_ids` for whom every condition holds now."""
        if not conditions or not customer_ids:
            return set(customer_ids)
        self.con.register("_ids", pa.table({"customer_id": pa.array(sorted(set(customer_ids)), pa.string())}))
        rows = fetch(self.con, f"SELECT c.customer_id FROM customer_facts c JOIN _ids USING (customer_id) "
                                f"WHERE {conditions_sql(conditions)}").fetchall()
        self.con.unregister("_ids")
        return {r[0] for r in rows}

    def still_matching(self, journey: Journey, customer_ids: Sequence[str]) -> set[str]:
        """Customers still in the state the trigger put them in (the branch `left_segment` is its negation):
        in the entered segment, in a `to` segment, out of the exited segment, or meeting the value condition."""
        trigger = journey.trigger
        if isinstance(trigger, ValueCondition):
            return self.matching(customer_ids, trigger.where)
        if isinstance(trigger, SegmentEntered | SegmentMigrated):
            wanted = [trigger.segment] if isinstance(trigger, SegmentEntered) else trigger.to_segments
            return self.matching(customer_ids, [Condition(column=trigger.dimension, op="in", value=list(wanted))])
        in_segment = self.matching(customer_ids, [Condition(column=trigger.dimension, op="=", value=trigger.segment)])
        return set(customer_ids) - in_segment

    def current_segments(self, customer_ids: Sequence[str],
                         recommended_for: Sequence[str] = ()) -> dict[str, dict[str, object]]:
        """The facts a message may say about each customer (never an address): segments, R/F/M, the
        engagement segment, and for the customers of `recommended_for` (those whose message names
        them) their recommended products (rfmlake.recommend.serving), best first: nobody else's are
        read."""
        if not customer_ids:
            return {}
        self.con.register("_ids", pa.table({"customer_id": pa.array(sorted(set(customer_ids)), pa.string())}))
        cursor = self.con.execute("SELECT c.customer_id, c.rfm_segment, c.cluster_label, c.engagement_segment, "
                                  "c.recency_days, c.frequency, CAST(c.monetary AS DOUBLE) AS monetary "
                                  "FROM customer_facts c JOIN _ids USING (customer_id)")
        names = [d[0] for d in cursor.description]
        out = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        self.con.unregister("_ids")
        if recommended_for:
            for customer_id, fields in recommendation_fields(self.lake, recommended_for).items():
                out.setdefault(customer_id, {"customer_id": customer_id}).update(fields)
        return out

    # -- orders ----------------------------------------------------------------------------------
    def first_orders(self, entries: pa.Table, until: date) -> dict[tuple[str, str, date], date]:
        """(journey, customer, entry date) -> the date of the first completed order on or after the
        entry date and before `until` (orders of `until` itself are not in the lake yet)."""
        if entries.num_rows == 0 or "gold.fct_orders" not in self.tables:
            return {}
        self.con.register("_entries", entries.select(["journey_id", "customer_id", "entry_date"]))
        rows = fetch(self.con,
            "SELECT e.journey_id, e.customer_id, e.entry_date, min(o.order_date) FROM _entries e "
            "JOIN gold.fct_orders o ON o.customer_id = e.customer_id AND o.status = 'completed' "
            "AND o.order_date >= e.entry_date AND o.order_date < ? GROUP BY ALL", [until]).fetchall()
        self.con.unregister("_entries")
        return {(j, c, d): first for j, c, d, first in rows}


def recommendation_fields(lake: Lake, customer_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """The template fields of each customer's recommended products (gold.product_recommendations):
    `recommendation_<i>` is the name of the i-th best product (its id when the catalogue has no
    name), `recommendations` the first RECOMMENDED_IN_LIST of them joined by commas. A customer
    without recommendations gets empty fields (a template renders them as nothing)."""
    from rfmlake.recommend.serving import recommendations_for

    out: dict[str, dict[str, str | None]] = {}
    for customer_id, items in recommendations_for(lake, customer_ids, n=RECOMMENDATION_SLOTS).items():
        names = [str(item["product_name"] or item["product_id"])[:FIELD_MAX] for item in items]
        fields: dict[str, str | None] = {f"recommendation_{i}": (names[i - 1] if i <= len(names) else None)
                                         for i in range(1, RECOMMENDATION_SLOTS + 1)}
        fields["recommendations"] = ", ".join(names[:RECOMMENDED_IN_LIST]) or None
        out[customer_id] = fields
    return out
