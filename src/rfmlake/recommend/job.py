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
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rfmlake.identity.people import person_events_query
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.recommend.evaluation import TimeSplit, evaluate_time_split
from rfmlake.recommend.model import ItemSimilarityRecommender
from rfmlake.reporting.quality import RECOMMENDATIONS_REPORT
from rfmlake.settings import RecommendationSettings

OUTPUT_TABLE = "product_recommendations"
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
            rows = con.execute(
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


def read_inputs(lake: Lake, counted_statuses: tuple[str, ...]) -> LakeInputs:
    """Purchases (order lines of counted orders, by the buyer as a person), product views of people
    (signed in under any of their customer ids, or anonymous on a device identity joined to them),
    the catalogue, segments and the people to serve, each keyed by their primary customer id.
    Interactions at or after as_of are left out."""
    con = connect(lake, zones=("silver", "gold"))
    try:
        def has(zone: str, name: str) -> bool:
            return lake.current(zone, name) is not None

        as_of = None
        if has("gold", "customer_rfm"):
            found = con.execute("select max(as_of_date) from gold.customer_rfm").fetchone()
            as_of = found[0] if found else None
        parts = []
        if has("gold", "fct_orders") and has("silver", "order_items"):
            parts.append(f"""
                select o.customer_id, i.product_id, 'purchase' as kind, cast(o.ordered_at as timestamp) as occurred_at
                from gold.fct_orders as o join silver.order_items as i on i.order_id = o.order_id
                where o.status in ({_sql_list(counted_statuses)}) and i.product_id is not null""")
        if has("silver", "events"):
            parts.append(_views_query(has("gold", "identity_graph")))
        if parts:
            where = "where occurred_at < cast(? as timestamp)" if as_of is not None else ""
            params = [as_of] if as_of is not None else []
            # Through Arrow, not .df(): to_pandas makes one Python string per distinct id, not one per
            # row (at 10M order lines, 20M interactions of 2M customers: gigabytes of repeated ids).
            interactions = con.execute(f"select * from ({' union all '.join(parts)}) {where}",
                                       params).to_arrow_table().to_pandas()
        else:
            interactions = pd.DataFrame({"customer_id": [], "product_id": [], "kind": [], "occurred_at": []})
        interactions["occurred_at"] = pd.to_datetime(interactions["occurred_at"])
        if has("silver", "products"):
            products = con.execute("select product_id, name as product_name, category, brand "
                                   "from silver.products").df()
        else:
            products = pd.DataFrame({"product_id": [], "product_name": [], "category": [], "brand": []})
        segments = pd.Series(dtype="object")
        if has("gold", "customer_rfm"):
            frame = con.execute("select customer_id, rfm_segment from gold.customer_rfm").df()
            segments = pd.Series(frame["rfm_segment"].to_numpy(), index=frame["customer_id"].to_numpy(), dtype="object")
        customer_sql = [f"select {_person_key(lake, t)} from gold.{t}" for t in ("dim_customers", "customer_rfm")
                        if has("gold", t)]
        customers = ([str(r[0]) for r in con.execute(" union ".join(customer_sql) + " order by 1").fetchall()]
                     if customer_sql else [])
    finally:
        con.close()
    return LakeInputs(interactions, products, segments, customers, as_of)


def make_model(settings: RecommendationSettings) -> ItemSimilarityRecommender:
    return ItemSimilarityRecommender(n_neighbors=settings.n_neighbors, view_weight=settings.view_weight,
                                     max_per_category=settings.max_per_category,
                                     category_weight=settings.category_weight, brand_weight=settings.brand_weight)


def model_version(settings: RecommendationSettings, as_of: date | None) -> str:
    params = settings.model_dump(exclude={"personalize", "bootstrap_samples", "test_days", "evaluate_every_days"})
    raw = json.dumps({"params": params, "as_of": str(as_of)}, sort_keys=True)
    return "rec-" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def evaluation_parameters(settings: RecommendationSettings) -> dict[str, Any]:
    """The settings an evaluation depends on (as the report records them): all but Personalize's and
    the schedule's."""
    return json.loads(json.dumps(settings.model_dump(exclude={"personalize", "evaluate_every_days"}), default=str))


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


def time_split(interactions: pd.DataFrame, as_of: date, test_days: int) -> TimeSplit | None:
    """The last test_days before as_of, at most a third of the history; None below a week."""
    purchases = interactions[interactions["kind"] == "purchase"]
    if purchases.empty:
        return None
    span = (as_of - purchases["occurred_at"].min().date()).days
    days = min(test_days, span // 3)
    if days < MIN_TEST_DAYS:
        return None
    return TimeSplit(split_date=as_of - timedelta(days=days), end_date=as_of)


def recommendations_to_arrow(frame: pd.DataFrame, products: pd.DataFrame, as_of: date | None,
                             version: str) -> pa.Table:
    catalogue = products.drop_duplicates("product_id").set_index("product_id")
    joined = frame.join(catalogue[["product_name", "category", "brand"]], on="product_id")
    return pa.table({
        "customer_id": pa.array(joined["customer_id"], pa.string()),
        "rank": pa.array(joined["rank"], pa.int16()),
        "product_id": pa.array(joined["product_id"], pa.string()),
        "product_name": pa.array(joined["product_name"].astype("object").where(joined["product_name"].notna(), None),
                                 pa.string()),
        "category": pa.array(joined["category"].astype("object").where(joined["category"].notna(), None), pa.string()),
        "brand": pa.array(joined["brand"].astype("object").where(joined["brand"].notna(), None), pa.string()),
        "score": pa.array(joined["score"], pa.float64()),
        "source": pa.array(joined["source"], pa.string()),
        "as_of_date": pa.array([as_of] * len(joined), pa.date32()),
        "model_version": pa.array([version] * len(joined), pa.string()),
    }, schema=RECOMMENDATIONS_SCHEMA)


def _batches(model: ItemSimilarityRecommender, inputs: LakeInputs, n: int, version: str) -> Iterator[pa.Table]:
    for frame in model.iter_recommendations(inputs.customers, n):
        yield recommendations_to_arrow(frame, inputs.products, inputs.as_of, version)


def run_recommendations(ctx: RunContext, *, personalize_client: Any = None) -> dict[str, Any]:
    """Evaluate on the time split, fit on everything before as_of, write gold.product_recommendations
    (every person of the profile, by primary customer id: similar items, else their segment's or
    everyone's favourites) and the report. With no purchase at all the table is committed empty and
    the stage says why. `personalize_client`: a boto3 Personalize client to use (else one is built)."""
    settings = ctx.settings.recommendations
    inputs = read_inputs(ctx.lake, ctx.settings.rfm.counted_statuses)
    version = model_version(settings, inputs.as_of)
    report: dict[str, Any] = {
        "status": "fitted", "model_version": version,
        "as_of_date": inputs.as_of.isoformat() if inputs.as_of else None,
        "parameters": settings.model_dump(exclude={"personalize"}),
        "interactions": {str(k): int(v) for k, v in inputs.interactions["kind"].value_counts().items()},
        "products": int(len(inputs.products)), "notes": [],
    }
    purchases = int(report["interactions"].get("purchase", 0))
    if purchases == 0 or inputs.as_of is None:
        ctx.lake.write_arrow("gold", OUTPUT_TABLE, RECOMMENDATIONS_SCHEMA.empty_table())
        reason = "no counted purchase with a product in the lake: nothing to learn from"
        report.update({"status": "skipped", "skipped": reason, "evaluation": None})
        _write_report(ctx, report)
        return report
    split = time_split(inputs.interactions, inputs.as_of, settings.test_days)
    if split is None:
        report["evaluation"] = None
        report["notes"].append(f"offline evaluation skipped: the history allows a test period of under "
                               f"{MIN_TEST_DAYS} days")
    elif (carried := carried_evaluation(ctx, inputs.as_of)) is not None:
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
    model = make_model(settings).fit(inputs.interactions, inputs.products, inputs.segments)
    table = pa.concat_tables(list(_batches(model, inputs, settings.n, version))) if inputs.customers \
        else RECOMMENDATIONS_SCHEMA.empty_table()
    if settings.personalize.enabled:
        table = _personalize(ctx, inputs, table, report, personalize_client)
    ctx.lake.write_arrow("gold", OUTPUT_TABLE, table)
    sources = table.group_by("source").aggregate([("customer_id", "count_distinct")]).to_pylist()
    report.update({
        "customers": len(inputs.customers), "rows": table.num_rows,
        "customers_by_source": {r["source"]: r["customer_id_count_distinct"] for r in sources},
        "coverage": round(pc.count_distinct(table.column("product_id")).as_py() / max(1, model.n_items_), 6),
    })
    _write_report(ctx, report)
    return report


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
    keys = ("status", "model_version", "customers", "rows", "coverage", "personalize", "evaluation_from", "notes",
            "skipped")
    summary = {key: report[key] for key in keys if key in report}
    evaluation = report.get("evaluation") or {}
    if "metrics" in evaluation:
        summary["evaluation"] = {name: {"model": m["model"], "baseline": m["baseline"],
                                        "ci": [m["ci_low"], m["ci_high"]]}
                                 for name, m in evaluation["metrics"].items() if name != "coverage"}
    return summary
