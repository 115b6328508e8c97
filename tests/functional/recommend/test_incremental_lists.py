"""Between fits the recommendations stage scores only the people whose inputs changed, and everyone
else keeps their list (recommendations.refit_every_days, docs/recommendations.md). The invariant: the
table an incremental run writes is exactly the table scoring every person with the same stored fit
would write, every column.

A property over random splits: each seed deals a random history (orders with lines, product views,
people, segments) into runs that deliver it in pieces, with late rows (old timestamps in a later
delivery), rows of the future that as_of reaches, an order cancelled after it counted, people who
come and go, people without history whose segment changes, a renamed product and as_of moving by 0
to 2 days; the last run comes 7 days after the fit and fits again. The stage runs for real
(run_pipeline on a lake whose silver and gold tables the test writes); the expected table is the
stored fit, loaded from the lake, scoring everyone against the lake's inputs at that run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.recommend.job import model_folder, read_inputs, recommendations_to_arrow
from rfmlake.recommend.model import ItemSimilarityRecommender
from rfmlake.settings import load_settings

RECOMMENDATIONS = tuple(s for s in PIPELINE if s.name == "recommendations")
AFTER = PIPELINE[PIPELINE.index(RECOMMENDATIONS[0]) + 1]  # the stage a failing run fails in
SEGMENTS = ("Champions", "Loyal", "At risk", "Hibernating")
RUNS = 4          # deliveries within the fit's week; a fifth run comes 7 days after the fit
FIRST_AS_OF = date(2026, 3, 1)


@dataclass
class World:
    """Everything that will have happened, and when each piece reaches the lake."""

    products: list[dict]
    people: dict[str, tuple[int, int]]    # customer id -> (first run present, first run gone: RUNS + 2 = never)
    orders: list[dict]                    # order_id, customer_id, ordered_at, arrives (run), cancelled_in (run)
    lines: list[dict]                     # order_id, product_id
    views: list[dict]                     # event_id, customer_id, product_id, event_ts, arrives
    segments: dict[int, dict[str, str]]   # run -> customer id -> segment (the unsegmented absent)
    renamed: tuple[str, int]              # a product and the run from which it has another name
    as_of: dict[int, date]


def deal(seed: int) -> World:
    rng = np.random.default_rng(seed)
    never = RUNS + 2
    products = [{"product_id": f"P{i:03d}", "name": f"Product {i}", "category": f"cat{i % 8}",
                 "brand": f"brand{(i * 3) % 5}"} for i in range(48)]
    people = {f"C{i:03d}": (1, never) for i in range(70)}
    people.update({f"N{i:03d}": (3, never) for i in range(5)})  # new to the lake in run 3
    for gone in rng.choice(sorted(people)[:60], size=3, replace=False):
        people[str(gone)] = (1, 3)                                  # gone from run 3
    as_of = {1: FIRST_AS_OF}
    for run in range(2, RUNS + 1):
        as_of[run] = as_of[run - 1] + timedelta(days=int(rng.integers(0, 3)))
    as_of[RUNS + 1] = FIRST_AS_OF + timedelta(days=7)
    quiet = set(sorted(people)[60:70])   # no history at all: their lists are their segment's
    orders, lines, views = [], [], []
    for person, (present, _) in people.items():
        if person in quiet:
            continue
        favourite = int(rng.integers(0, 8))
        for _ in range(int(rng.integers(0, 5))):
            order_id = f"O{len(orders):05d}"
            # mostly history, some in the days as_of moves into (delivered early: they count once as_of passes)
            days = float(rng.uniform(-150, 0)) if rng.random() < 0.9 else float(rng.uniform(0, 8))
            arrives = max(present, int(rng.choice(np.arange(1, RUNS + 2), p=[0.6, 0.1, 0.1, 0.1, 0.1])))
            orders.append({"order_id": order_id, "customer_id": person, "arrives": arrives, "cancelled_in": never,
                           "ordered_at": datetime(2026, 3, 1) + timedelta(days=days)})
            for _ in range(int(rng.integers(1, 4))):
                category = favourite if rng.random() < 0.6 else int(rng.integers(0, 8))
                lines.append({"order_id": order_id, "product_id": f"P{category + 8 * int(rng.integers(0, 6)):03d}"})
        for _ in range(int(rng.integers(0, 4))):
            views.append({"event_id": f"E{len(views):05d}", "customer_id": person,
                          "product_id": f"P{int(rng.integers(0, 48)):03d}",
                          "event_ts": datetime(2026, 3, 1) + timedelta(days=float(rng.uniform(-60, 6))),
                          "arrives": max(present, int(rng.integers(1, RUNS + 2)))})
    early = [o for o in orders if o["arrives"] == 1 and o["ordered_at"] < datetime(2026, 2, 1)]
    early[int(rng.integers(0, len(early)))]["cancelled_in"] = 3
    segments: dict[int, dict[str, str]] = {}
    unsegmented = set(sorted(quiet)[:3])
    current = {p: str(rng.choice(SEGMENTS)) for p in people if p not in unsegmented}
    for run in range(1, RUNS + 2):
        for person in list(current):
            if run > 1 and rng.random() < 0.15:
                current[person] = str(rng.choice(SEGMENTS))
        segments[run] = dict(current)
    renamed = (str(lines[int(rng.integers(0, len(lines)))]["product_id"]), 2)
    return World(products, people, orders, lines, views, segments, renamed, as_of)


def deliver(lake: Lake, world: World, run: int) -> None:
    """The silver and gold tables the stage reads, as the lake holds them at `run`."""
    here = {p for p, (first, gone) in world.people.items() if first <= run < gone}
    orders = [o for o in world.orders if o["arrives"] <= run]
    delivered = {o["order_id"] for o in orders}
    product, renamed_in = world.renamed
    names = [p["name"] + (" (new name)" if p["product_id"] == product and run >= renamed_in else "")
             for p in world.products]
    lake.write_arrow("silver", "products", pa.table({
        "product_id": [p["product_id"] for p in world.products], "name": names,
        "category": [p["category"] for p in world.products], "brand": [p["brand"] for p in world.products]}))
    lake.write_arrow("gold", "fct_orders", pa.table({
        "order_id": [o["order_id"] for o in orders], "customer_id": [o["customer_id"] for o in orders],
        "ordered_at": pa.array([o["ordered_at"] for o in orders], pa.timestamp("us")),
        "status": ["cancelled" if o["cancelled_in"] <= run else "completed" for o in orders]}))
    items = [line for line in world.lines if line["order_id"] in delivered]
    lake.write_arrow("silver", "order_items", pa.table({
        "order_id": [i["order_id"] for i in items], "product_id": [i["product_id"] for i in items]}))
    views = [v for v in world.views if v["arrives"] <= run]
    lake.write_arrow("silver", "events", pa.table({
        "event_id": [v["event_id"] for v in views], "event_type": ["product_view"] * len(views),
        "customer_id": [v["customer_id"] for v in views], "product_id": [v["product_id"] for v in views],
        "event_ts": pa.array([v["event_ts"] for v in views], pa.timestamp("us"))}))
    people = sorted(here)
    lake.write_arrow("gold", "dim_customers", pa.table({"customer_id": people}))
    segmented = [p for p in people if p in world.segments[run]]
    lake.write_arrow("gold", "customer_rfm", pa.table({
        "customer_id": segmented, "rfm_segment": [world.segments[run][p] for p in segmented],
        "as_of_date": pa.array([world.as_of[run]] * len(segmented), pa.date32()),
        "monetary": [1.0] * len(segmented), "cluster_id": [0] * len(segmented),
        "cluster_label": ["all"] * len(segmented), "model_version": ["seg-test"] * len(segmented)}))


def run_stage(lake: Lake, *, full: bool = False) -> dict:
    ctx = RunContext(landing_dir=lake.root.parent / "landing", lake=lake, settings=load_settings(), full=full)
    run_pipeline(ctx, stages=RECOMMENDATIONS)
    return json.loads((ctx.run_dir / "recommendations_report.json").read_text())


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.sort_by([("customer_id", "ascending"), ("rank", "ascending")])


def assert_same_table(written: pa.Table, expected: pa.Table, where: str) -> None:
    assert written.num_rows == expected.num_rows > 0, where
    got, want = sorted_rows(written), sorted_rows(expected)
    for column in want.column_names:
        if not got.column(column).equals(want.column(column)):
            pytest.fail(f"{where}: column {column} differs from what the stored fit writes scoring everyone")


def scored_by_the_stored_fit(lake: Lake, version: str) -> pa.Table:
    """gold.product_recommendations as the stored fit `version` writes it scoring every person."""
    model, _ = ItemSimilarityRecommender.load(model_folder(lake, version))
    inputs = read_inputs(lake, load_settings().rfm.counted_statuses)
    model.set_history(inputs.interactions, inputs.segments)
    frame = model.recommend(inputs.customers, load_settings().recommendations.n)
    return recommendations_to_arrow(frame, inputs.products, inputs.as_of, version)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_an_incremental_run_writes_what_the_stored_fit_writes_scoring_everyone(tmp_path: Path, seed: int) -> None:
    world = deal(seed)
    lake = Lake(tmp_path / "lake")
    reports = []
    for run in range(1, RUNS + 2):
        deliver(lake, world, run)
        report = run_stage(lake)
        reports.append(report)
        written = lake.read_arrow(lake.require("gold", "product_recommendations"))
        expected = scored_by_the_stored_fit(lake, report["model_version"])
        assert_same_table(written, expected, f"seed {seed}, run {run}")
        assert report["customers_scored"] + report["customers_carried"] == report["customers"]
        product, renamed_in = world.renamed
        names = set(written.filter(pa.compute.equal(written.column("product_id"), product)).column("product_name")
                    .to_pylist())
        assert names <= {f"Product {int(product[1:])}" + (" (new name)" if run >= renamed_in else "")}
    first, *between, refit = reports
    assert "model_from" not in first and first["customers_scored"] == first["customers"]
    origin = between[0]["model_from"]
    for report in between:   # the fit of run 1, scoring only who changed
        assert report["model_from"] == origin and report["model_version"] == first["model_version"]
        assert 0 < report["customers_scored"] < report["customers"]
    assert "model_from" not in refit and refit["customers_scored"] == refit["customers"]   # 7 days on: fitted
    # Old fits do not pile up (a workspace on AWS pulls the whole store): the first fit stays while
    # it holds the current table's inputs, and goes once a run under the new fit replaced that table.
    def fits() -> set[str]:
        return {p.name for p in (lake.models_dir / "recommendations").iterdir() if p.is_dir()}

    assert fits() == {first["model_version"], refit["model_version"]}
    assert run_stage(lake)["model_from"]["as_of_date"] == refit["as_of_date"]
    assert fits() == {refit["model_version"]}


def test_full_runs_and_a_missing_model_score_everyone_with_a_new_fit(tmp_path: Path) -> None:
    world = deal(5)
    lake = Lake(tmp_path / "lake")
    deliver(lake, world, 1)
    first = run_stage(lake)
    deliver(lake, world, 2)
    full = run_stage(lake, full=True)
    assert "model_from" not in full and full["customers_scored"] == full["customers"]
    carried = run_stage(lake)
    assert carried["model_from"]["as_of_date"] == full["as_of_date"] and carried["customers_scored"] == 0
    (model_folder(lake, full["model_version"]) / "model.npz").unlink()
    again = run_stage(lake)
    assert "model_from" not in again and again["customers_scored"] == again["customers"]
    assert again["model_version"] == full["model_version"] != first["model_version"]  # the same data: the same fit


@pytest.mark.parametrize("refit", [False, True], ids=["scoring", "refitting"])
def test_a_failed_runs_lists_and_inputs_are_never_what_a_later_run_keeps(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refit: bool) -> None:
    world = deal(6)
    lake = Lake(tmp_path / "lake")
    deliver(lake, world, 1)
    first = run_stage(lake)
    deliver(lake, world, 3)
    module, function = AFTER.entry.split(":")

    def fail(*_: Any) -> None:
        raise RuntimeError("injected after the recommendations stage")

    with monkeypatch.context() as patch:
        patch.setattr(module + "." + function, fail)
        with pytest.raises(PipelineError, match=AFTER.name):
            run_pipeline(RunContext(landing_dir=tmp_path / "landing", lake=lake, settings=load_settings(),
                                    full=refit), stages=(*RECOMMENDATIONS, AFTER))
    # the lake's table is still run 1's, and so are the inputs it is compared with; run 3's data is here
    after = run_stage(lake)
    assert after["model_from"]["as_of_date"] == first["as_of_date"]
    assert 0 < after["customers_scored"] < after["customers"]
    written = lake.read_arrow(lake.require("gold", "product_recommendations"))
    assert_same_table(written, scored_by_the_stored_fit(lake, first["model_version"]), "after a failed run")
