"""Issue 16: on the demo's data the automatic k gives between 3 and 8 clusters, each holding at least
2% of the customers (docs/reports.md). The data is what `rfmlake demo` generates at its default size
and seed; the stages up to segmentation run on it with the settings `rfmlake demo` uses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rfmlake.cli.demo import add_parser
from rfmlake.generate import generate_landing
from rfmlake.lake import Lake
from rfmlake.lake.catalog import connect
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings

pytestmark = pytest.mark.slow

UP_TO_SEGMENTATION = ("ingest_bronze", "conform_silver", "quality_silver", "identity", "dbt_build", "segmentation")


def _demo_defaults() -> dict[str, object]:
    """`rfmlake demo`'s own defaults (order lines, seed, bad rows), read from its parser."""
    import argparse

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["demo"])
    return {"order_lines": args.order_lines, "seed": args.seed, "bad_rows": not args.clean}


def test_the_demo_data_gets_3_to_8_clusters_of_at_least_2_percent(tmp_path: Path) -> None:
    defaults = _demo_defaults()
    assert defaults == {"order_lines": 20_000, "seed": 7, "bad_rows": True}  # what docs/reports.md measured
    generate_landing(tmp_path / "landing", **defaults)
    lake = Lake(tmp_path / "lake")
    settings = load_settings()  # `rfmlake demo` without --config
    assert (settings.segmentation.k, settings.segmentation.k_min, settings.segmentation.k_max,
            settings.segmentation.min_cluster_share) == (None, 3, 8, 0.02)
    ctx = RunContext(landing_dir=tmp_path / "landing", lake=lake, settings=settings)
    summary = run_pipeline(ctx, stages=tuple(s for s in PIPELINE if s.name in UP_TO_SEGMENTATION))
    assert [s.status for s in summary.stages] == ["succeeded"] * len(UP_TO_SEGMENTATION)

    report = json.loads((ctx.run_dir / "segmentation_report.json").read_text())
    assert report["k_selection"].startswith("automatic"), report["k_reason"]
    con = connect(lake)
    try:
        sizes = dict(con.execute("SELECT cluster_id, count(*) FROM gold.customer_rfm GROUP BY 1").fetchall())
        customers = con.execute("SELECT count(*) FROM gold.customer_rfm").fetchone()[0]
    finally:
        con.close()
    assert customers > 3000  # the demo's few thousand customers, not a sample
    assert 3 <= len(sizes) <= 8 and len(sizes) == report["k"], (sizes, report["k_reason"])
    shares = {cluster: n / customers for cluster, n in sizes.items()}
    assert min(shares.values()) >= 0.02, (shares, report["k_reason"])
