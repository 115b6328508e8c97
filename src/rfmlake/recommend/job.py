"""The recommendations stage: interactions from the lake -> offline evaluation on a time split
(against the popularity baseline; at most every `evaluate_every_days`, carried from the last
successful run in between) -> the model fitted on all history -> gold.product_recommendations, and
the report (recommendations_report.json) in the run folder, which `rfmlake report` shows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rfmlake.identity.people import person_events_query
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.lake.duck import fetch
from rfmlake.lake.tables import TableRef, parquet_scan
from rfmlake.pipeline.context import RunContext, earlier_fit
from rfmlake.recommend.evaluation import TimeSplit, evaluate_time_split
from rfmlake.recommend.model import ItemSimilarityRecommender
from rfmlake.reporting.quality import RECOMMENDATIONS_REPORT
from rfmlake.settings import RecommendationSettings

OUTPUT_TABLE = "product_recommendations"
MODEL_STORE = "recommendations"   # lake.models_dir / MODEL_STORE / <model_version>: a stored fit
PEOPLE_FOLDER = "people"          # <fit>/people/<table version>.parquet: each person's inputs (LakeReader)
REPORT_FILE = RECOMMENDATIONS_REPORT  # the run folder's file, named where `rfmlake report` reads it
MIN_TEST_DAYS = 7

RECOMMENDATIONS_SCHEMA = pa.schema([
    ("customer_id", pa.string()),
    ("rank", pa.int16()),
    ("product_id", pa.string()),
    ("product_name", pa.string()),
    ("category", pa.string()),
    ("brand", pa.string()),
    ("score", pa.float64()),
    ("source", pa.string()),
    ("as_of_date", pa.date32()),
    ("model_version", pa.string()),
])


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


@dataclass
class LakeInputs:
    """What the recommender reads from the lake."""

    interactions: pd.DataFrame   # customer_id, product_id, kind, occurred_at (naive UTC), before as_of
    products: pd.DataFrame       # product_id, product_name, category, brand
    segments: pd.Series          # customer_id -> rfm_segment at as_of
    customers: list[str]         # who gets recommendations: every person of the profile (primary customer id)
    as_of: date | None

    def segments_at(self, day: date, lake: Lake) -> dict[str, str]:
        """Each customer's segment at the latest scoring before `day` (segment_membership_history),
        so the evaluation's fallback knows nothing of the test period."""
        if lake.current("gold", "segment_membership_history") is None:
            return {}
        con = connect(lake, zones=("gold",))
        try:
            rows = fetch(con,
                "select customer_id, arg_max(rfm_segment, as_of_date) from gold.segment_membership_history "
                "where as_of_date <= ? and rfm_segment is not null group by customer_id", [day]).fetchall()
        finally:
            con.close()
        return {str(c): str(s) for c, s in rows}


def _views_query(with_identity: bool) -> str:
    """Product views as interactions of people, keyed like the rest of gold by the person's primary
    customer id (rfmlake.identity.people: signed in under any of their ids, or anonymous on a device
    identity joined to them). Without the graph: the signed-in customer id."""
    where = "ev.event_type = 'product_view' and ev.product_id is not null"
    if not with_identity:
        return f"""
            select ev.customer_id, ev.product_id, 'view' as kind, cast(ev.event_ts as timestamp) as occurred_at
            from silver.events as ev where {where} and ev.customer_id is not null"""
    return f"""
        select person_customer_id as customer_id, product_id, 'view' as kind,
               cast(event_ts as timestamp) as occurred_at
        from ({person_events_query(where)}) as views"""


def _person_key(lake: Lake, table: str) -> str:
    """The column of `table` that keys a person: dim_customers is one row per customer id and names
    its person's primary id (docs/adr/0020); the per-person tables are keyed by it already."""
    ref = lake.current("gold", table)
    if table == "dim_customers" and ref is not None and "person_customer_id" in lake.table_schema(ref).names:
        return "person_customer_id as customer_id"
    return "customer_id"


# Each served person's inputs, as the lists depend on them (ItemSimilarityRecommender.set_history):
# how many purchases and views, two order-free 64-bit sums over their (product, kind) interactions
# (a multiset digest: the same rows in any order, any file, give the same sums), and their segment.
# Kept beside the stored model for each table it wrote; a person whose row differs at the next run
# is scored again. Interactions of people not served (no row in dim_customers or customer_rfm) do
# not change anyone's list between fits.
_TOUCHED_SQL = """
    create or replace temp table touched as
    select customer_id,
           count(*) filter (where kind = 'purchase') as purchases,
           count(*) filter (where kind = 'view') as views,
           cast(sum(hash(product_id, kind)) % 18446744073709551616 as ubigint) as digest_a,
           cast(sum(hash(kind, product_id, 'rfmlake')) % 18446744073709551616 as ubigint) as digest_b,
           min(occurred_at) filter (where kind = 'purchase') as first_purchase_at
    from ({interactions}) group by customer_id"""
_PERSON_INPUTS_SQL = """
    create or replace temp table person_inputs as
    select s.customer_id, coalesce(t.purchases, 0) as purchases, coalesce(t.views, 0) as views,
           coalesce(t.digest_a, 0) as digest_a, coalesce(t.digest_b, 0) as digest_b, g.rfm_segment as segment
    from (select distinct customer_id from ({served})) as s
    left join touched as t using (customer_id)
    left join {segments} as g using (customer_id)"""


class LakeReader:
    """The stage's inputs, through one DuckDB connection over silver and gold: purchases (order
    lines of counted orders, by the buyer as a person), product views of people (signed in under any
    of their customer ids, or anonymous on a device identity joined to them), the catalogue,
    segments and the people to serve, each keyed by their primary customer id. Interactions at or
    after as_of are left out. Each query scans the lake again: nothing is held but what it returns."""

    def __init__(self, lake: Lake, counted_statuses: tuple[str, ...], memory_limit: str | None = None) -> None:
        self.lake = lake
        self.con = connect(lake, zones=("silver", "gold"), memory_limit=memory_limit,
                           temp_dir=lake.system_dir / "tmp" if lake.is_local else None)
        self.as_of: date | None = None
        if self._has("gold", "customer_rfm"):
            found = self.con.execute("select max(as_of_date) from gold.customer_rfm").fetchone()
            self.as_of = found[0] if found else None
        parts = []
        if self._has("gold", "fct_orders") and self._has("silver", "order_items"):
            parts.append(f"""
                select o.customer_id, i.product_id, 'purchase' as kind, cast(o.ordered_at as timestamp) as occurred_at
                from gold.fct_orders as o join silver.order_items as i on i.order_id = o.order_id
                where o.status in ({_sql_list(counted_statuses)}) and i.product_id is not null""")
        if self._has("silver", "events"):
            parts.append(_views_query(self._has("gold", "identity_graph")))
        if not parts:
            parts.append("select cast(null as varchar) as customer_id, cast(null as varchar) as product_id, "
                         "cast(null as varchar) as kind, cast(null as timestamp) as occurred_at where false")
        where = f"where occurred_at < cast('{self.as_of.isoformat()}' as timestamp)" if self.as_of is not None else ""
        self.interactions_sql = f"select * from ({' union all '.join(parts)}) {where}"
        served = [f"select {_person_key(lake, t)} from gold.{t}" for t in ("dim_customers", "customer_rfm")
                  if self._has("gold", t)]
        self.served_sql = (" union ".join(served) if served
                           else "select cast(null as varchar) as customer_id where false")

    def _has(self, zone: str, name: str) -> bool:
        return self.lake.current(zone, name) is not None

    def hold_interactions(self) -> None:
        """Read the interactions once into a DuckDB temp table, which every later query reads instead
        of the lake (it spills to disk past the memory limit): for a run that scans them more than
        once (the inputs of every person, then the changed people's rows)."""
        self.con.execute(f"create or replace temp table interactions_now as {self.interactions_sql}")
        self.interactions_sql = "select * from interactions_now"

    def close(self) -> None:
        self.con.close()

    def interactions(self, *, of_changed: bool = False) -> pd.DataFrame:
        """Every interaction before as_of, or only those of the people `changed_since` found."""
        where = " where customer_id in (select customer_id from changed)" if of_changed else ""
        # Through Arrow, not .df(): to_pandas makes one Python string per distinct id, not one per
        # row (at 10M order lines, 20M interactions of 2M customers: gigabytes of repeated ids).
        frame = fetch(self.con, f"select * from ({self.interactions_sql}){where}").to_arrow_table().to_pandas()
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
        return frame

    def products(self) -> pd.DataFrame:
        if not self._has("silver", "products"):
            return pd.DataFrame({"product_id": [], "product_name": [], "category": [], "brand": []})
        return fetch(self.con, "select product_id, name as product_name, category, brand from silver.products").df()

    def segments(self) -> pd.Series:
        if not self._has("gold", "customer_rfm"):
            return pd.Series(dtype="object")
        frame = fetch(self.con, "select customer_id, rfm_segment from gold.customer_rfm").df()
        return pd.Series(frame["rfm_segment"].to_numpy(), index=frame["customer_id"].to_numpy(), dtype="object")

    def customers(self) -> list[str]:
        return [str(r[0]) for r in fetch(self.con, f"select * from ({self.served_sql}) order by 1").fetchall()]

    def record_person_inputs(self) -> tuple[dict[str, int], date | None]:
        """Each served person's inputs (temp table person_inputs, _PERSON_INPUTS_SQL), in one pass over
        the interactions; returns the interactions by kind and the day of the first purchase."""
        self.con.execute(_TOUCHED_SQL.format(interactions=self.interactions_sql))
        segments = ("(select distinct customer_id, rfm_segment from gold.customer_rfm)"
                    if self._has("gold", "customer_rfm") else
                    "(select cast(null as varchar) as customer_id, cast(null as varchar) as rfm_segment where false)")
        self.con.execute(_PERSON_INPUTS_SQL.format(served=self.served_sql, segments=segments))
        purchases, views, first = self.con.execute(
            "select coalesce(sum(purchases), 0), coalesce(sum(views), 0), min(first_purchase_at) "
            "from touched").fetchone()
        counts = {kind: int(count) for kind, count in (("purchase", purchases), ("view", views)) if count}
        return counts, first.date() if first is not None else None

    def save_person_inputs(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        self.con.execute(f"copy person_inputs to '{_sql_path(tmp)}' (format parquet, compression zstd)")
        tmp.replace(path)

    def changed_since(self, previous: Path) -> list[str]:
        """The served people whose inputs differ from `previous` (what save_person_inputs wrote for
        the table they were scored into) or who were not served then (temp table changed), in order."""
        self.con.execute(f"""
            create or replace temp table changed as
            select p.customer_id from person_inputs as p
            left join read_parquet('{_sql_path(previous)}') as q on q.customer_id = p.customer_id
            where q.customer_id is null or p.purchases <> q.purchases or p.views <> q.views
               or p.digest_a <> q.digest_a or p.digest_b <> q.digest_b or p.segment is distinct from q.segment""")
        return [str(r[0]) for r in fetch(self.con, "select customer_id from changed order by 1").fetchall()]

    def kept_rows(self, previous: TableRef) -> pa.Table:
        """The rows of `previous` (gold.product_recommendations) of the served people not in `changed`."""
        return fetch(self.con, f"""
            select r.customer_id, r.rank, r.product_id, r.score, r.source from {parquet_scan(previous)} as r
            where exists (select 1 from person_inputs as p where p.customer_id = r.customer_id)
              and not exists (select 1 from changed as c where c.customer_id = r.customer_id)""").to_arrow_table()


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def read_inputs(lake: Lake, counted_statuses: tuple[str, ...]) -> LakeInputs:
    """Every input of a fit (LakeReader), read at once."""
    reader = LakeReader(lake, counted_statuses)
    try:
        return LakeInputs(reader.interactions(), reader.products(), reader.segments(), reader.customers(),
                          reader.as_of)
    finally:
        reader.close()


def make_model(settings: RecommendationSettings) -> ItemSimilarityRecommender:
    return ItemSimilarityRecommender(n_neighbors=settings.n_neighbors, view_weight=settings.view_weight,
                                     max_per_category=settings.max_per_category,
                                     category_weight=settings.category_weight, brand_weight=settings.brand_weight)


def fit_parameters(settings: RecommendationSettings) -> dict[str, Any]:
    """The settings a fit and its lists depend on (a stored fit is used only under the same): all but
    Personalize's, the evaluation's and the schedules'."""
    params = settings.model_dump(exclude={"personalize", "bootstrap_samples", "test_days", "evaluate_every_days",
                                          "refit_every_days"})
    return json.loads(json.dumps(params, default=str))


def model_version(settings: RecommendationSettings, as_of: date | None, digest: str) -> str:
    """The name of a fit: its settings, as_of and fitted state (ItemSimilarityRecommender.digest)."""
    raw = json.dumps({"params": fit_parameters(settings), "as_of": str(as_of), "digest": digest}, sort_keys=True)
    return "rec-" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def evaluation_parameters(settings: RecommendationSettings) -> dict[str, Any]:
    """The settings an evaluation depends on (as the report records them): all but Personalize's and
    the schedules'."""
    return json.loads(json.dumps(settings.model_dump(exclude={"personalize", "evaluate_every_days",
                                                              "refit_every_days"}), default=str))


@dataclass(frozen=True)
class EarlierEvaluation:
    """The offline evaluation a run may carry instead of evaluating: the run that computed it and its as_of."""

    evaluation: dict[str, Any]
    run_id: str
    as_of_date: date

    def origin(self) -> dict[str, str]:
        return {"run_id": self.run_id, "as_of_date": self.as_of_date.isoformat()}


def earlier_evaluation(ctx: RunContext) -> EarlierEvaluation | None:
    """The evaluation in the report of the latest successful earlier run that ran this stage (a
    failed run's report is never used: a failed run commits nothing), when it has metrics and was
    made with this run's evaluation parameters; traced back to the run that computed it when that
    report carried it too. None when there is no such run (or the lake keeps no local run folders)."""
    found = ctx.earlier_report(REPORT_FILE)
    if found is None:
        return None
    run_id, report = found
    evaluation = report.get("evaluation")
    parameters = dict(report.get("parameters") or {})
    parameters.pop("evaluate_every_days", None)
    parameters.pop("refit_every_days", None)
    if not isinstance(evaluation, dict) or "metrics" not in evaluation \
            or parameters != evaluation_parameters(ctx.settings.recommendations):
        return None
    origin = report.get("evaluation_from") or {"run_id": run_id, "as_of_date": report.get("as_of_date")}
    try:
        return EarlierEvaluation(evaluation, str(origin["run_id"]), date.fromisoformat(str(origin["as_of_date"])))
    except (KeyError, ValueError):
        return None


def carried_evaluation(ctx: RunContext, as_of: date) -> EarlierEvaluation | None:
    """The earlier evaluation this run carries instead of evaluating: one made with the same
    parameters at an as_of fewer than `evaluate_every_days` days before this run's (not after it).
    None, so the run evaluates, on `rfmlake run --full` and with evaluate_every_days 0 or 1."""
    every = ctx.settings.recommendations.evaluate_every_days
    if ctx.full or every <= 1:
        return None
    earlier = earlier_evaluation(ctx)
    if earlier is None or not 0 <= (as_of - earlier.as_of_date).days < every:
        return None
    return earlier


@dataclass(frozen=True)
class StoredModel:
    """The fit an earlier run stored, which this run scores with instead of fitting."""

    model: ItemSimilarityRecommender
    version: str
    folder: Path
    run_id: str
    as_of_date: date

    def origin(self) -> dict[str, str]:
        return {"run_id": self.run_id, "as_of_date": self.as_of_date.isoformat()}


def model_folder(lake: Lake, version: str) -> Path:
    return lake.models_dir / MODEL_STORE / version


def keeps_models(ctx: RunContext) -> bool:
    """Whether a later run can score with this run's fit: a local lake keeps it, and a processing
    job's workspace of a lake on S3 pushes it back (the stage's declared state,
    `models/recommendations`), where the next run's workspace pulls it from."""
    return ctx.lake.is_local


def stored_model(ctx: RunContext, as_of: date) -> StoredModel | None:
    """The fit of the latest successful earlier run (traced back to the run that fitted it) when it
    was fitted with this run's fit_parameters at an as_of fewer than `recommendations.refit_every_days`
    days before this run's (not after it). None, so the run fits, on `rfmlake run --full`, with
    refit_every_days 0 or 1, or when that fit's files are gone, unreadable or not what they say."""
    settings = ctx.settings.recommendations
    fit = earlier_fit(ctx, REPORT_FILE, as_of, settings.refit_every_days) if keeps_models(ctx) else None
    if fit is None:
        return None
    try:
        folder = model_folder(ctx.lake, fit.model_version)
        model, stored = ItemSimilarityRecommender.load(folder)
    except (KeyError, OSError, TypeError, ValueError):
        return None
    if stored.get("model_version") != fit.model_version or stored.get("parameters") != fit_parameters(settings):
        return None
    return StoredModel(model, fit.model_version, folder, fit.run_id, fit.as_of_date)


def time_split(first_purchase: date | None, as_of: date, test_days: int) -> TimeSplit | None:
    """The last test_days before as_of, at most a third of the history since the first purchase;
    None below a week."""
    if first_purchase is None:
        return None
    days = min(test_days, (as_of - first_purchase).days // 3)
    if days < MIN_TEST_DAYS:
        return None
    return TimeSplit(split_date=as_of - timedelta(days=days), end_date=as_of)


def catalogue_table(products: pd.DataFrame) -> pa.Table:
    """The catalogue columns of each product (its first row when listed twice)."""
    first = products.drop_duplicates("product_id")
    return pa.table({column: pa.array(first[column], pa.string(), from_pandas=True)
                     for column in ("product_id", "product_name", "category", "brand")})


def _named(picks: pa.Table, catalogue: pa.Table, as_of: date | None, version: str) -> pa.Table:
    """Rows of gold.product_recommendations from picks (customer_id, rank, product_id, score,
    source): the catalogue's columns joined, as_of and the model version set. The one place both the
    scored and the kept lists take their names from, so the two cannot differ."""
    found = pc.index_in(picks.column("product_id"), value_set=catalogue.column("product_id"))
    n = picks.num_rows
    return pa.table({
        "customer_id": picks.column("customer_id").cast(pa.string()),
        "rank": picks.column("rank").cast(pa.int16()),
        "product_id": picks.column("product_id").cast(pa.string()),
        **{column: pc.take(catalogue.column(column), found) for column in ("product_name", "category", "brand")},
        "score": picks.column("score").cast(pa.float64()),
        "source": picks.column("source").cast(pa.string()),
        "as_of_date": pa.repeat(pa.scalar(as_of, pa.date32()), n),
        "model_version": pa.repeat(pa.scalar(version, pa.string()), n),
    }, schema=RECOMMENDATIONS_SCHEMA)


def _picks(frame: pd.DataFrame) -> pa.Table:
    return pa.table({
        "customer_id": pa.array(frame["customer_id"], pa.string()),
        "rank": pa.array(frame["rank"], pa.int16()),
        "product_id": pa.array(frame["product_id"], pa.string()),
        "score": pa.array(frame["score"], pa.float64()),
        "source": pa.array(frame["source"], pa.string()),
    })


def recommendations_to_arrow(frame: pd.DataFrame, products: pd.DataFrame, as_of: date | None,
                             version: str) -> pa.Table:
    return _named(_picks(frame), catalogue_table(products), as_of, version)


def _batches(model: ItemSimilarityRecommender, customers: list[str], catalogue: pa.Table, n: int,
             as_of: date | None, version: str) -> Iterator[pa.Table]:
    for frame in model.iter_recommendations(customers, n):
        yield _named(_picks(frame), catalogue, as_of, version)


def run_recommendations(ctx: RunContext, *, personalize_client: Any = None) -> dict[str, Any]:
    """Evaluate on the time split (on its schedule), fit on everything before as_of (on its
    schedule: else the stored fit scores the people whose inputs changed, and everyone else keeps
    their list), write gold.product_recommendations (every person of the profile, by primary
    customer id: similar items, else their segment's or everyone's favourites) and the report. With
    no purchase at all the table is committed empty and the stage says why. `personalize_client`: a
    boto3 Personalize client to use (else one is built)."""
    reader = LakeReader(ctx.lake, ctx.settings.rfm.counted_statuses, ctx.settings.duckdb_memory_limit)
    try:
        return _run(ctx, reader, personalize_client)
    finally:
        reader.close()


def _run(ctx: RunContext, reader: LakeReader, personalize_client: Any) -> dict[str, Any]:
    settings = ctx.settings.recommendations
    as_of = reader.as_of
    stored = stored_model(ctx, as_of) if as_of is not None else None
    if stored is not None:
        reader.hold_interactions()  # read again for the changed people (a fit reads them once, into pandas)
    counts, first_purchase = reader.record_person_inputs()
    products = reader.products()
    report: dict[str, Any] = {
        "status": "fitted", "model_version": None,
        "as_of_date": as_of.isoformat() if as_of else None,
        "parameters": settings.model_dump(exclude={"personalize"}),
        "interactions": counts, "products": int(len(products)), "notes": [],
    }
    if counts.get("purchase", 0) == 0 or as_of is None:
        ctx.lake.write_arrow("gold", OUTPUT_TABLE, RECOMMENDATIONS_SCHEMA.empty_table())
        reason = "no counted purchase with a product in the lake: nothing to learn from"
        report.update({"status": "skipped", "skipped": reason, "evaluation": None})
        _write_report(ctx, report)
        return report
    split = time_split(first_purchase, as_of, settings.test_days)
    carried = carried_evaluation(ctx, as_of) if split is not None else None
    evaluate = split is not None and carried is None
    # every interaction in memory only to fit, evaluate or export; else only the changed people's
    everything = stored is None or evaluate or settings.personalize.enabled
    inputs = LakeInputs(reader.interactions() if everything else _NO_INTERACTIONS, products, reader.segments(),
                        reader.customers(), as_of)
    if split is None:
        report["evaluation"] = None
        report["notes"].append(f"offline evaluation skipped: the history allows a test period of under "
                               f"{MIN_TEST_DAYS} days")
    elif carried is not None:
        report["evaluation"] = carried.evaluation
        report["evaluation_from"] = carried.origin()
        report["notes"].append(
            f"offline evaluation carried from run {carried.run_id} (as_of {carried.as_of_date}, same parameters): "
            f"evaluated again once as_of is {settings.evaluate_every_days} days after it "
            "(recommendations.evaluate_every_days), or on `rfmlake run --full`")
    else:
        evaluation = evaluate_time_split(
            inputs.interactions, inputs.products, split, lambda: make_model(settings),
            segments_at_split=inputs.segments_at(split.split_date, ctx.lake), k=settings.n,
            bootstrap_samples=settings.bootstrap_samples, seed=settings.random_state)
        report["evaluation"] = evaluation
        if "skipped" in evaluation:
            report["notes"].append(f"offline evaluation skipped: {evaluation['skipped']}")
    previous = ctx.lake.current("gold", OUTPUT_TABLE)
    kept = None
    if stored is None:
        model = make_model(settings).fit(inputs.interactions, inputs.products, inputs.segments)
        version = model_version(settings, as_of, model.digest())
        folder = model_folder(ctx.lake, version)
        if keeps_models(ctx):
            model.save(folder, {"model_version": version, "as_of_date": as_of.isoformat(),
                                "parameters": fit_parameters(settings)})
        scored = inputs.customers
    else:
        model, version, folder = stored.model, stored.version, stored.folder
        report["model_from"] = stored.origin()
        inputs_file = folder / PEOPLE_FOLDER / f"{previous.version}.parquet" if previous is not None else None
        if inputs_file is not None and inputs_file.is_file() and not settings.personalize.enabled:
            scored = reader.changed_since(inputs_file)
            kept = reader.kept_rows(previous)
            segments = inputs.segments[inputs.segments.index.isin(scored)]
            model.set_history(reader.interactions(of_changed=True), segments)
        else:
            scored = inputs.customers
            model.set_history(inputs.interactions if everything else reader.interactions(), inputs.segments)
        report["notes"].append(_carried_note(stored, len(scored), len(inputs.customers) - len(scored),
                                             settings.refit_every_days, kept is not None))
    catalogue = catalogue_table(inputs.products)
    parts = [_named(kept, catalogue, as_of, version)] if kept is not None else []
    parts += list(_batches(model, scored, catalogue, settings.n, as_of, version)) if scored else []
    table = pa.concat_tables(parts) if parts else RECOMMENDATIONS_SCHEMA.empty_table()
    if settings.personalize.enabled:
        table = _personalize(ctx, inputs, table, report, personalize_client)
    written = ctx.lake.write_arrow("gold", OUTPUT_TABLE, table)
    if keeps_models(ctx) and not settings.personalize.enabled:
        # the inputs this table was scored from, for the next run's comparison
        reader.save_person_inputs(folder / PEOPLE_FOLDER / f"{written.version}.parquet")
        # the current table's stay too: should this run fail, the next compares with them
        _prune_person_inputs(ctx.lake, keep={written.version, *([previous.version] if previous else [])})
    if keeps_models(ctx):
        _prune_fits(ctx.lake, keep=folder)
    sources = table.group_by("source").aggregate([("customer_id", "count_distinct")]).to_pylist()
    report.update({
        "model_version": version,
        "customers": len(inputs.customers), "customers_scored": len(scored),
        "customers_carried": len(inputs.customers) - len(scored), "rows": table.num_rows,
        "customers_by_source": {r["source"]: r["customer_id_count_distinct"] for r in sources},
        "coverage": round(pc.count_distinct(table.column("product_id")).as_py() / max(1, model.n_items_), 6),
    })
    _write_report(ctx, report)
    return report


_NO_INTERACTIONS = pd.DataFrame({"customer_id": pd.Series(dtype="object"), "product_id": pd.Series(dtype="object"),
                                 "kind": pd.Series(dtype="object"), "occurred_at": pd.Series(dtype="datetime64[ns]")})


def _carried_note(stored: StoredModel, scored: int, kept: int, every: int, compared: bool) -> str:
    why = ("the people whose purchases, views or segment changed, or who are new" if compared else
           "everyone: the current table was not scored by this fit from inputs it kept")
    return (f"lists from the model fitted in run {stored.run_id} (as_of {stored.as_of_date}, same settings): "
            f"{scored} people scored ({why}), {kept} kept their lists; fitted again once as_of is {every} days "
            "after it (recommendations.refit_every_days), or on `rfmlake run --full`")


def _prune_person_inputs(lake: Lake, keep: set[str]) -> int:
    """Drop the inputs kept for table versions not in `keep` (the current one and this run's), of
    any fit: no later run compares with them (a failed run's table never becomes current). Returns
    the files dropped."""
    dropped = 0
    for path in (lake.models_dir / MODEL_STORE).glob(f"*/{PEOPLE_FOLDER}/*.parquet"):
        if path.stem not in keep:
            path.unlink(missing_ok=True)
            dropped += 1
    return dropped


def _prune_fits(lake: Lake, keep: Path) -> int:
    """Drop the stored fits no later run can use: all but `keep` (this run's) and the fits holding
    kept person inputs (the one that scored the current table, should this run fail). On AWS the
    stage's workspace pulls the whole store every run, so old fits must not pile up. Returns the
    fits dropped."""
    import shutil

    dropped = 0
    for fit in (lake.models_dir / MODEL_STORE).iterdir():
        if fit.is_dir() and fit != keep and not any((fit / PEOPLE_FOLDER).glob("*.parquet")):
            shutil.rmtree(fit, ignore_errors=True)
            dropped += 1
    return dropped


def forget_person_inputs(lake: Lake) -> int:
    """Drop every person's kept inputs (they name customer ids): what erasure does, as it rewrites
    gold.product_recommendations anyway; the next run scores everyone with the stored fit."""
    return _prune_person_inputs(lake, keep=set()) if lake.is_local else 0


def _personalize(ctx: RunContext, inputs: LakeInputs, table: pa.Table, report: dict[str, Any],
                 client: Any = None) -> pa.Table:
    """With Personalize on: the newest finished batch inference results replace the model's lists of
    the customers they cover, and this run's datasets go to the exchange prefix (which starts the
    next cycle on AWS). Personalize being unreachable or a failed job is a note, not a failed run:
    the model's lists stand."""
    from botocore.exceptions import BotoCoreError, ClientError

    from rfmlake.recommend import personalize

    config = ctx.settings.recommendations.personalize
    section: dict[str, Any] = {}
    report["personalize"] = section
    try:
        if config.solution_arn:
            latest = personalize.latest_batch_output(config.solution_arn, client=client)
            if latest is None:
                report["notes"].append("personalize: no finished batch inference job yet; the model's lists stand")
            else:
                job, output = latest
                batch = personalize.read_batch_output(output)
                version = "personalize:" + job.rsplit("/", 1)[-1]
                table = personalize.merge_batch_results(table, batch, inputs.products, inputs.as_of, version,
                                                        ctx.settings.recommendations.n)
                # the people whose lists were replaced: users the lake does not serve are left out
                imported = pc.count_distinct(table.filter(pc.equal(table.column("source"),
                                                                   personalize.SOURCE_PERSONALIZE)).column("customer_id"))
                section.update({"imported_job": job, "customers": imported.as_py(),
                                "batch_users": int(batch["customer_id"].nunique())})
        if config.exchange_uri:
            export = personalize.export_datasets(inputs, config.exchange_uri, ctx.run_id)
            section.update({"exported_to": export.run_uri, "rows": export.rows})
    except (personalize.PersonalizeError, ClientError, BotoCoreError) as exc:
        report["notes"].append(f"personalize: {exc}; the model's lists stand")
    return table


def _write_report(ctx: RunContext, report: dict[str, Any]) -> None:
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    (ctx.run_dir / REPORT_FILE).write_text(json.dumps(report, indent=2, default=str) + "\n")


def stage_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The stage's line in the run summary: the headline numbers, not the whole evaluation."""
    keys = ("status", "model_version", "model_from", "customers", "customers_scored", "customers_carried", "rows",
            "coverage", "personalize", "evaluation_from", "notes", "skipped")
    summary = {key: report[key] for key in keys if key in report}
    evaluation = report.get("evaluation") or {}
    if "metrics" in evaluation:
        summary["evaluation"] = {name: {"model": m["model"], "baseline": m["baseline"],
                                        "ci": [m["ci_low"], m["ci_high"]]}
                                 for name, m in evaluation["metrics"].items() if name != "coverage"}
    return summary
