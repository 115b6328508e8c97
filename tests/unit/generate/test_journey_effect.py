"""plant_journey_effect: a landing orders file in which each customer a journey admitted orders
within the goal window with the base rate, a treated one (by the journey's own hash) with the base
rate plus the uplift; seeded, recorded in the generator's manifest, refusing what it cannot do."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from journey_lakes import NOON, JourneyLake, customer_ids, journey_set, win_back
from rfmlake.errors import RfmlakeError
from rfmlake.generate.journey_effect import ORDER_COLUMNS, plant_journey_effect
from rfmlake.generate.landing import MANIFEST_NAME
from rfmlake.journeys.assignment import HOLDOUT, bucket, group_of
from rfmlake.journeys.engine import advance
from rfmlake.journeys.results import write_assignments
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake

CUSTOMERS = 4000
JOURNEY = win_back(id="win_back", holdout_percent=50, salt="s1", goal={"within_days": 10},
                   steps=[{"id": "wait", "wait": {"days": 30}}])


def _admitted(lake: Lake, journey: dict = JOURNEY) -> JourneyLake:
    shop = JourneyLake(lake, CUSTOMERS)
    shop.score(NOON.date(), {c: ("At Risk" if i % 4 else "Loyal") for i, c in enumerate(customer_ids(CUSTOMERS))})
    journeys = journey_set(journey)
    advance(lake, journeys, {}, now=NOON)
    write_assignments(lake, JourneyStore(lake.location))
    return shop


def _rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == ORDER_COLUMNS
        return list(reader)


def test_the_treated_order_at_the_base_rate_plus_the_uplift_inside_the_goal_window(lake: Lake, tmp_path: Path) -> None:
    _admitted(lake)
    journey = journey_set(JOURNEY).journeys[0]
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / MANIFEST_NAME).write_text(json.dumps({"files": {"orders/orders.csv": 10}}))
    effect = plant_journey_effect(lake, landing, journey, uplift=0.2, base_rate=0.1, seed=3, currency="SEK")

    assert Path(effect.file) == landing / "orders" / "journey-effect-win_back-3.csv"
    rows = _rows(effect.file)
    entered = {c for i, c in enumerate(customer_ids(CUSTOMERS)) if i % 4}  # everyone At Risk, consenting
    treated = {c for c in entered if group_of(bucket("win_back", c, "s1"), 50, journey.variants) != HOLDOUT}
    assert (effect.treated, effect.held_out) == (len(treated), len(entered) - len(treated))
    buyers = Counter(r["customer_id"] for r in rows)
    assert set(buyers) <= entered and max(buyers.values()) == 1
    assert (effect.treated_orders, effect.holdout_orders) == (len(set(buyers) & treated), len(set(buyers) - treated))
    # the planted rates, within binomial chance
    assert stats.binomtest(effect.treated_orders, effect.treated, 0.3).pvalue > 0.001
    assert stats.binomtest(effect.holdout_orders, effect.held_out, 0.1).pvalue > 0.001
    start = datetime.combine(NOON.date(), datetime.min.time(), UTC)
    times = [datetime.fromisoformat(r["order_ts"].replace("Z", "+00:00")) for r in rows]
    assert all(start <= t < start + timedelta(days=10) for t in times)
    assert (effect.first_order_date, effect.last_order_date) == (min(times).date().isoformat(),
                                                                 max(times).date().isoformat())
    assert {(r["status"], r["currency"]) for r in rows} == {("completed", "SEK")}
    assert len({r["order_id"] for r in rows}) == len(rows)
    # each order is the customer's average order value with lognormal(0, 0.3) noise
    rfm = {r["customer_id"]: r["avg_order_value"]
           for r in lake.read_arrow(lake.require("gold", "customer_rfm")).to_pylist()}
    log_ratio = np.log([float(r["order_total"]) / rfm[r["customer_id"]] for r in rows])
    assert abs(log_ratio.mean()) < 4 * 0.3 / np.sqrt(len(rows)) and 0.25 < log_ratio.std() < 0.35

    manifest = json.loads((landing / MANIFEST_NAME).read_text())
    relative = "orders/journey-effect-win_back-3.csv"
    assert manifest["files"] == {"orders/orders.csv": 10, relative: len(rows)}
    assert manifest["journey_effects"][relative] == {**effect.to_dict(), "file": relative}

    # seeded: the same seed writes the same file, another seed another
    again = plant_journey_effect(lake, tmp_path / "again", journey, uplift=0.2, base_rate=0.1, seed=3, currency="SEK")
    other = plant_journey_effect(lake, tmp_path / "other", journey, uplift=0.2, base_rate=0.1, seed=4, currency="SEK")
    assert Path(again.file).read_bytes() == Path(effect.file).read_bytes()
    assert _rows(other.file) != rows
    assert not (tmp_path / "again" / MANIFEST_NAME).exists()  # no generator manifest: nothing to record


def test_without_uplift_treated_and_held_out_order_alike_and_the_currency_is_the_lakes(lake: Lake,
                                                                                      tmp_path: Path) -> None:
    shop = _admitted(lake)
    journey = journey_set(JOURNEY).journeys[0]
    # the reporting currency of the lake's orders (a single-currency shop stays single-currency)
    lake.write_arrow("gold", "fct_orders", pa.table({"order_id": ["O1"], "reporting_currency": ["GBP"]}))
    effect = plant_journey_effect(lake, tmp_path / "gbp", journey, uplift=0.0, base_rate=0.2, seed=1)
    assert {r["currency"] for r in _rows(effect.file)} == {"GBP"}
    rate_t, rate_h = effect.treated_orders / effect.treated, effect.holdout_orders / effect.held_out
    table = [[effect.treated_orders, effect.treated - effect.treated_orders],
             [effect.holdout_orders, effect.held_out - effect.holdout_orders]]
    assert stats.chi2_contingency(table, correction=False).pvalue > 0.001, (rate_t, rate_h)
    assert shop.land_orders([effect.file]) == effect.treated_orders + effect.holdout_orders


def test_a_lake_without_entries_and_impossible_rates_are_refused(lake: Lake, tmp_path: Path) -> None:
    journey = journey_set(JOURNEY).journeys[0]
    with pytest.raises(RfmlakeError, match="base rate must be between 0 and 1, got 1.5"):
        plant_journey_effect(lake, tmp_path, journey, uplift=0.0, base_rate=1.5)
    with pytest.raises(RfmlakeError, match=r"base rate \+ uplift must be between 0 and 1, got 0.9 \+ 0.2"):
        plant_journey_effect(lake, tmp_path, journey, uplift=0.2, base_rate=0.9)
    with pytest.raises(RfmlakeError, match="has no journey entries yet: run the pipeline with the journey 'win_back'"):
        plant_journey_effect(lake, tmp_path, journey, uplift=0.1)
    _admitted(lake)
    nobody = journey_set({**JOURNEY, "id": "nobody"}).journeys[0]
    with pytest.raises(RfmlakeError, match="journey 'nobody' has admitted nobody"):
        plant_journey_effect(lake, tmp_path, nobody, uplift=0.1, currency="EUR")
    assert not (tmp_path / "orders").exists()
