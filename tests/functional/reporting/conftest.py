"""A lake with one real run of the segmentation and customer_value stages over hand-built gold
tables (no Spark, no dbt): what `rfmlake report` reads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings
from value_lakes import AS_OF, write_simulated_gold


@dataclass(frozen=True)
class ReportedLake:
    root: Path
    run_id: str

    @property
    def run_dir(self) -> Path:
        return Lake(self.root).runs_dir / self.run_id


def write_gold_orders_and_features(lake: Lake, n: int = 600, seed: int = 11) -> None:
    write_simulated_gold(lake, n=n, seed=seed, bgnbd=(0.8, 40.0, 1.2, 5.0), gamma_gamma=(4.0, 5.0, 60.0),
                         max_first_days=720)


@pytest.fixture(scope="module")
def reported_lake(tmp_path_factory: pytest.TempPathFactory) -> ReportedLake:
    root = tmp_path_factory.mktemp("reporting") / "lake"
    lake = Lake(root)
    write_gold_orders_and_features(lake)
    stages = tuple(s for s in PIPELINE if s.name in {"segmentation", "customer_value"})
    settings = load_settings(overrides={"segmentation.k_max": 6})
    ctx = RunContext(landing_dir=root.parent / "landing", lake=lake, settings=settings, as_of=AS_OF)
    run_pipeline(ctx, stages=stages)
    return ReportedLake(root=root, run_id=ctx.run_id)
