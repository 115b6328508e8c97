"""notebooks/ run top to bottom (papermill) on a small demo lake built once by the real pipeline;
the dashboard and the saved queries run on the same lake."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rfmlake.analytics import query_names, run_saved_query
from rfmlake.dashboard import write_dashboard
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.settings import load_settings

pytestmark = [pytest.mark.slow, pytest.mark.spark]

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory: pytest.TempPathFactory, spark) -> Iterator[Lake]:  # noqa: ARG001
    from rfmlake.generate import generate_landing

    root = tmp_path_factory.mktemp("notebooks_demo")
    generate_landing(root / "landing", order_lines=2000, seed=31)
    lake = Lake(root / "lake")
    summary = run_pipeline(RunContext(landing_dir=root / "landing", lake=lake, settings=load_settings()))
    assert all(s.status == "succeeded" for s in summary.stages), [(s.name, s.status) for s in summary.stages]
    previous = os.environ.get("RFMLAKE_LAKE")
    os.environ["RFMLAKE_LAKE"] = str(lake.root)  # the kernels papermill starts inherit it
    yield lake
    if previous is None:
        os.environ.pop("RFMLAKE_LAKE", None)
    else:
        os.environ["RFMLAKE_LAKE"] = previous


def test_the_four_notebooks_exist() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == [
        "01_explore_the_lake.ipynb", "02_rfm_scoring_walkthrough.ipynb", "03_segments_and_kmeans.ipynb",
        "04_customer_value.ipynb",
    ]


@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_notebook_runs_top_to_bottom(demo_lake: Lake, notebook: str, tmp_path: Path) -> None:
    import papermill

    out = tmp_path / notebook
    executed = papermill.execute_notebook(str(NOTEBOOKS / notebook), str(out), kernel_name="python3",
                                          cwd=str(NOTEBOOKS), progress_bar=False)
    code = [cell for cell in executed.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)
    text = "\n".join(str(o.get("text", "")) for cell in code for o in cell.outputs)
    assert f"lake: {demo_lake.root.resolve()}" in text  # it read the lake it was given, not ../demo/lake
    assert not any(o.get("output_type") == "error" for cell in code for o in cell.outputs)


def test_saved_queries_on_the_pipeline_lake(demo_lake: Lake) -> None:
    for name in query_names():
        frame = run_saved_query(demo_lake, name)
        if name != "segment_migration":  # one run: no pair of dates yet
            assert len(frame) > 0, name
    sizes = run_saved_query(demo_lake, "segment_sizes_over_time")
    assert sizes["revenue_share"].sum() == pytest.approx(1.0, abs=1e-3)


def test_dashboard_on_the_pipeline_lake(demo_lake: Lake, tmp_path: Path) -> None:
    import browser

    dom = browser.dump_dom(write_dashboard(demo_lake, tmp_path / "d.html"))
    figures = dict(re.findall(r'<figure class="chart[^"]*" data-chart="([^"]+)">(.*?)</figure>', dom, re.DOTALL))
    for name, figure in figures.items():
        if name == "segment_migration":
            assert "only one scoring date so far" in figure
        else:
            assert 'class="mark"' in figure, name


def test_dbt_docs_generate(demo_lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from rfmlake.cli.main import main

    assert main(["docs", "--lake", str(demo_lake.root), "--no-serve"]) == 0
    out = demo_lake.system_dir / "dbt" / "docs"
    assert str(out) in capsys.readouterr().out
    assert (out / "static_index.html").stat().st_size > 100_000
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"exposure.rfmlake.segment_dashboard", "exposure.rfmlake.profile_api"} <= set(manifest["exposures"])
    assert "source.rfmlake.gold.customer_rfm" in manifest["exposures"]["exposure.rfmlake.segment_dashboard"][
        "depends_on"]["nodes"]
    rfm = manifest["sources"]["source.rfmlake.gold.customer_rfm"]["columns"]
    assert all(column["description"] for column in rfm.values()) and "r_score" in rfm
    catalog = json.loads((out / "catalog.json").read_text())
    assert "model.rfmlake.customer_rfm_features" in catalog["nodes"]  # the built marts, with their columns
