"""The offline evaluation on a schedule (recommendations.evaluate_every_days), end to end on copies
of the `run` fixture's lake: a run fewer than that many days after the last evaluation carries it,
naming the run that made it (and scores with the stored fit: recommendations.refit_every_days);
changed parameters, `--full` and evaluate_every_days 1 evaluate; the report of a failed run is
never what a later run carries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE, Stage
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.reporting import build_quality_report, render_html
from rfmlake.settings import Settings, load_settings

pytestmark = pytest.mark.slow

RECOMMENDATIONS = tuple(s for s in PIPELINE if s.name == "recommendations")
AFTER = PIPELINE[PIPELINE.index(RECOMMENDATIONS[0]) + 1]  # the stage the failing run fails in


@pytest.fixture()
def lake(run: tuple[Lake, Path, dict], tmp_path: Path) -> Lake:
    source, _, _ = run
    shutil.copytree(source.root, tmp_path / "lake")
    return Lake(tmp_path / "lake")


def settings(**recommendations: Any) -> Settings:
    base = load_settings()
    return base.model_copy(update={"recommendations": base.recommendations.model_copy(update=recommendations)})


def run_recommendations(lake: Lake, config: Settings | None = None, *, full: bool = False,
                        stages: tuple[Stage, ...] = RECOMMENDATIONS) -> tuple[str, dict]:
    ctx = RunContext(landing_dir=lake.root.parent / "landing", lake=lake, settings=config or load_settings(),
                     full=full)
    run_pipeline(ctx, stages=stages)
    return ctx.run_id, json.loads((ctx.run_dir / "recommendations_report.json").read_text())


def test_runs_within_the_schedule_carry_the_evaluation_of_the_run_that_made_it(run, lake: Lake) -> None:
    _, first_dir, first = run
    assert first["evaluation"]["metrics"] and "evaluation_from" not in first
    second_id, second = run_recommendations(lake)
    origin = {"run_id": first_dir.name, "as_of_date": first["as_of_date"]}
    assert second["evaluation"] == first["evaluation"]
    assert second["evaluation_from"] == origin
    assert any(f"carried from run {first_dir.name}" in note for note in second["notes"])
    assert second["rows"] == first["rows"] and second["model_version"] == first["model_version"]
    # the fit is carried too (recommendations.refit_every_days), and nobody's inputs changed
    assert second["model_from"] == origin and "model_from" not in first
    assert (second["customers_scored"], second["customers_carried"]) == (0, first["customers"])
    summary = json.loads((lake.runs_dir / second_id / "summary.json").read_text())
    stage = next(s for s in summary["stages"] if s["name"] == "recommendations")
    assert stage["status"] == "succeeded" and stage["summary"]["evaluation_from"] == origin
    _, third = run_recommendations(lake)
    assert third["evaluation_from"] == origin  # the run that evaluated, not the one that carried


def test_full_runs_every_run_settings_and_changed_parameters_evaluate(run, lake: Lake) -> None:
    _, _, first = run
    # each of these runs would carry the evaluation before it, but for what it changes
    _, full = run_recommendations(lake, full=True)
    assert "evaluation_from" not in full and full["evaluation"] == first["evaluation"]  # deterministic
    _, every_run = run_recommendations(lake, settings(evaluate_every_days=1))
    assert "evaluation_from" not in every_run and every_run["evaluation"] == first["evaluation"]
    _, changed = run_recommendations(lake, settings(n_neighbors=20))
    assert "evaluation_from" not in changed and changed["evaluation"]["metrics"]
    assert changed["evaluation"] != first["evaluation"]
    _, again = run_recommendations(lake, settings(n_neighbors=20))  # the same changed parameters: carried
    assert again["evaluation"] == changed["evaluation"] and "evaluation_from" in again


def test_a_failed_runs_evaluation_is_never_carried(run, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(n_neighbors=20)
    failing = RunContext(landing_dir=lake.root.parent / "landing", lake=lake, settings=config)
    module, function = AFTER.entry.split(":")

    def fail(*_: Any) -> None:
        raise RuntimeError("injected after the recommendations stage")

    with monkeypatch.context() as patch:
        patch.setattr(module + "." + function, fail)
        with pytest.raises(PipelineError, match=AFTER.name):
            run_pipeline(failing, stages=(*RECOMMENDATIONS, AFTER))
    failed_report = json.loads((failing.run_dir / "recommendations_report.json").read_text())
    assert failed_report["evaluation"]["metrics"]  # it evaluated, with the changed parameters
    _, after = run_recommendations(lake, config)
    assert "evaluation_from" not in after  # the latest successful run had other parameters: evaluated
    assert after["evaluation"] == failed_report["evaluation"]


def test_the_quality_report_says_which_run_made_a_carried_evaluation(run, lake: Lake) -> None:
    _, first_dir, _ = run
    run_id, _ = run_recommendations(lake, stages=tuple(s for s in PIPELINE if s.name in {"segmentation",
                                                                                      "recommendations"}))
    quality = build_quality_report(lake.root, lake.runs_dir / run_id)
    assert quality["recommendations"]["evaluation_from"]["run_id"] == first_dir.name
    assert quality["recommendations"]["model_from"]["run_id"] == first_dir.name
    page = render_html(quality)
    section = page[page.index('<section id="recommendations">'):]
    section = section[:section.index("</section>")]
    assert f"Evaluated by run <code>{first_dir.name}</code>" in section
    assert f"Fitted by run <code>{first_dir.name}</code>" in section and "kept their lists" in section
