"""The journey statistics end to end, over many seeds: the engine admits and assigns customers
(rfmlake.journeys.engine), the generator plants their orders with a known uplift for the treated
(rfmlake.generate.journey_effect, deciding who is treated by the journey's own hash), and
gold.journey_results is computed from the lake (rfmlake.journeys.results). With no planted uplift
the results call a lift significant at the nominal 5%; a planted uplift lies inside its 95% interval
as often as the confidence says. (tests/unit/journeys/test_journey_statistics.py checks the same on
binomial draws alone.)

One lake holds twenty independent experiments at once (a journey per segment, 500 customers each);
each seed plants every journey's orders anew. The planted files are loaded into gold.fct_orders by
JourneyLake.land_orders, standing in for ingest and dbt: the full pipeline per seed would take
minutes, and tests/functional/journeys/test_journeys_demo.py runs the planted file through it once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from journey_lakes import NOON, JourneyLake, customer_ids, journey_set
from rfmlake.generate.journey_effect import plant_journey_effect
from rfmlake.journeys.assignment import HOLDOUT
from rfmlake.journeys.engine import advance
from rfmlake.journeys.results import compute_results, write_assignments
from rfmlake.journeys.spec import JourneySet
from rfmlake.journeys.store import JourneyStore
from rfmlake.lake import Lake

JOURNEYS, CUSTOMERS_EACH = 20, 500
HOLDOUT_PERCENT, BASE_RATE, UPLIFT, GOAL_DAYS = 20, 0.10, 0.08, 14
NULL_SEEDS = range(15)              # 15 x 20 = 300 experiments without an effect
UPLIFT_SEEDS = range(1000, 1005)    # 5 x 20 = 100 experiments with UPLIFT planted
DAY0 = date(2026, 6, 1)
MEASURED_ON = DAY0 + timedelta(days=GOAL_DAYS)  # every goal window has closed


@dataclass
class Shop:
    root: Path
    shop: JourneyLake
    journeys: JourneySet

    @property
    def lake(self) -> Lake:
        return self.shop.lake

    def experiments(self, seed: int, uplift: float) -> list[dict[str, Any]]:
        """Plant every journey's orders with `seed`, then read each journey's treated row of
        gold.journey_results on the day its goal window closed, with the generator's counts."""
        effects = {j.id: plant_journey_effect(self.lake, self.root / "landing", j, uplift=uplift, base_rate=BASE_RATE,
                                              seed=seed, currency="EUR") for j in self.journeys.journeys}
        self.shop.land_orders([e.file for e in effects.values()])
        results = compute_results(self.lake, JourneyStore(self.lake.location), self.journeys).to_pylist()
        rows = {(r["journey_id"], r["variant"]): r for r in results if r["day"] == MEASURED_ON}
        out = []
        for journey_id, effect in effects.items():
            treated, holdout = rows[(journey_id, "A")], rows[(journey_id, HOLDOUT)]
            # the engine's groups are the generator's: the same customers, the same conversions
            assert (treated["entered"], holdout["entered"]) == (effect.treated, effect.held_out)
            assert (treated["conversions"], holdout["conversions"]) == (effect.treated_orders, effect.holdout_orders)
            out.append(treated)
        return out


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    root = tmp_path_factory.mktemp("planted")
    shop = JourneyLake(Lake(root / "lake"), JOURNEYS * CUSTOMERS_EACH)
    segments = {c: f"S{i // CUSTOMERS_EACH:02d}" for i, c in enumerate(customer_ids(JOURNEYS * CUSTOMERS_EACH))}
    journeys = journey_set(*[{
        "id": f"experiment_{k:02d}", "name": f"Experiment {k}",
        "trigger": {"type": "segment_entered", "segment": f"S{k:02d}", "include_existing": True},
        "holdout_percent": HOLDOUT_PERCENT, "goal": {"within_days": GOAL_DAYS, "exit_on_goal": False},
        "steps": [{"id": "wait", "wait": {"days": 60}}]} for k in range(JOURNEYS)])
    shop.score(DAY0, segments)
    advance(shop.lake, journeys, {}, now=NOON)
    write_assignments(shop.lake, JourneyStore(shop.lake.location))
    shop.score(MEASURED_ON, segments)  # the run that measures: nobody new enters
    report = advance(shop.lake, journeys, {}, now=NOON + timedelta(days=GOAL_DAYS))
    assert report.entered == {}
    return Shop(root, shop, journeys)


def test_with_no_planted_uplift_a_significant_lift_is_reported_at_the_nominal_rate(shop: Shop) -> None:
    rows = [row for seed in NULL_SEEDS for row in shop.experiments(seed, uplift=0.0)]
    assert len(rows) == 300 and {r["confidence_level"] for r in rows} == {0.95}
    significant = sum(bool(r["significant"]) for r in rows)
    assert significant == sum(r["p_value"] < 0.05 for r in rows)
    # the count is binomial(300, 0.05) if the results hold their level (the middle 99.9% is 4..28);
    # at other levels of the p-value likewise, which catches a test that is off by a factor (at 5%
    # alone, 300 experiments tell 5% from 10% only most of the time)
    for level, count in [(0.05, significant), *((a, sum(r["p_value"] < a for r in rows)) for a in (0.01, 0.1, 0.2))]:
        assert stats.binomtest(count, len(rows), level).pvalue > 0.001, (level, count)
    # and the lift estimates centre on zero
    lifts = np.array([r["lift"] for r in rows])
    assert abs(lifts.mean()) < 4 * lifts.std(ddof=1) / np.sqrt(lifts.size)


def test_a_planted_uplift_is_recovered_inside_its_interval(shop: Shop) -> None:
    rows = [row for seed in UPLIFT_SEEDS for row in shop.experiments(seed, uplift=UPLIFT)]
    assert len(rows) == 100
    covered = sum(r["lift_low"] <= UPLIFT <= r["lift_high"] for r in rows)
    # binomial(100, 0.95) if the interval holds its confidence
    assert stats.binomtest(covered, len(rows), 0.95).pvalue > 0.001, covered
    lifts = np.array([r["lift"] for r in rows])
    assert abs(lifts.mean() - UPLIFT) < 4 * lifts.std(ddof=1) / np.sqrt(lifts.size), lifts.mean()
    # detected far more often than the 5% of no effect (400 treated against 100 held out at a 10% base
    # rate have about 60% power for 8 points)
    assert sum(bool(r["significant"]) for r in rows) > 30
