"""The recommendations stage's run on a seeded generated landing (20,000 order lines), shared by the
stage's tests and the evaluation schedule's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rfmlake.generate import generate_landing
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings

STAGES = ("ingest_bronze", "conform_silver", "dbt_build", "segmentation", "recommendations")


@pytest.fixture(scope="package")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Path, dict]:
    """(lake, run folder, recommendations report) of one run of STAGES; the landing is beside the lake."""
    root = tmp_path_factory.mktemp("recommend")
    generate_landing(root / "landing", order_lines=20_000, seed=11)
    lake = Lake(root / "lake")
    ctx = RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings())
    run_pipeline(ctx, stages=tuple(s for s in PIPELINE if s.name in STAGES))
    report = json.loads((ctx.run_dir / "recommendations_report.json").read_text())
    return lake, ctx.run_dir, report
