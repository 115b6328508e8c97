"""rfmlake.recommend.job.carried_evaluation: which earlier evaluation a run carries, from run folders
written as the runner writes them (summary.json with `error` when the run failed)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.recommend.job import carried_evaluation, evaluation_parameters
from rfmlake.settings import Settings, load_settings

EVALUATION = {"k": 10, "metrics": {"ndcg@10": {"model": 0.1, "baseline": 0.08}}}


def settings(**recommendations: Any) -> Settings:
    base = load_settings()
    return base.model_copy(update={"recommendations": base.recommendations.model_copy(update=recommendations)})


def write_run(lake: Lake, run_id: str, as_of: str, *, failed: bool = False, evaluation: dict | None = EVALUATION,
              config: Settings | None = None, **report: Any) -> None:
    folder = lake.runs_dir / run_id
    folder.mkdir(parents=True)
    stages = [{"name": "recommendations", "status": "failed" if failed else "succeeded"}]
    summary = {"run_id": run_id, "stages": stages, **({"error": "stage recommendations failed"} if failed else {})}
    (folder / "summary.json").write_text(json.dumps(summary))
    parameters = {**evaluation_parameters((config or load_settings()).recommendations), "evaluate_every_days": 3}
    (folder / "recommendations_report.json").write_text(json.dumps(
        {"as_of_date": as_of, "parameters": parameters, "evaluation": evaluation, **report}))


def context(lake: Lake, config: Settings | None = None, *, full: bool = False) -> RunContext:
    return RunContext(landing_dir="landing", lake=lake, settings=config or load_settings(),
                      run_id="20260301T000000Z-cccccc", full=full)


@pytest.mark.parametrize(("as_of", "carried"), [
    (date(2026, 2, 10), True), (date(2026, 2, 16), True), (date(2026, 2, 17), False), (date(2026, 2, 9), False)])
def test_carried_while_as_of_is_fewer_than_evaluate_every_days_after_the_evaluation(
        lake: Lake, as_of: date, carried: bool) -> None:
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10")
    got = carried_evaluation(context(lake), as_of)
    assert (got is not None) == carried
    if got is not None:
        assert got.evaluation == EVALUATION
        assert got.origin() == {"run_id": "20260210T000000Z-aaaaaa", "as_of_date": "2026-02-10"}


def test_a_carried_evaluation_counts_from_the_run_that_made_it(lake: Lake) -> None:
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10")
    write_run(lake, "20260215T000000Z-bbbbbb", "2026-02-15",
              evaluation_from={"run_id": "20260210T000000Z-aaaaaa", "as_of_date": "2026-02-10"})
    got = carried_evaluation(context(lake), date(2026, 2, 16))
    assert got is not None and got.run_id == "20260210T000000Z-aaaaaa"
    assert carried_evaluation(context(lake), date(2026, 2, 17)) is None


def test_failed_runs_are_passed_over_and_only_the_latest_successful_run_counts(lake: Lake) -> None:
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10")
    write_run(lake, "20260212T000000Z-bbbbbb", "2026-02-12", failed=True)
    got = carried_evaluation(context(lake), date(2026, 2, 12))
    assert got is not None and got.run_id == "20260210T000000Z-aaaaaa"
    # the latest successful run has no evaluation (its history was too short): evaluate
    write_run(lake, "20260211T000000Z-dddddd", "2026-02-11", evaluation=None)
    assert carried_evaluation(context(lake), date(2026, 2, 12)) is None


def test_changed_parameters_full_runs_and_every_run_settings_evaluate(lake: Lake) -> None:
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10")
    day = date(2026, 2, 11)
    assert carried_evaluation(context(lake), day) is not None
    assert carried_evaluation(context(lake, settings(test_days=30)), day) is None
    assert carried_evaluation(context(lake, settings(view_weight=0.25)), day) is None
    assert carried_evaluation(context(lake, full=True), day) is None
    assert carried_evaluation(context(lake, settings(evaluate_every_days=1)), day) is None
    assert carried_evaluation(context(lake, settings(evaluate_every_days=0)), day) is None
    assert carried_evaluation(context(lake, settings(evaluate_every_days=2)), day) is not None


def test_no_earlier_run_means_evaluate(lake: Lake) -> None:
    assert carried_evaluation(context(lake), date(2026, 2, 11)) is None
    write_run(lake, "20260301T000000Z-cccccc", "2026-02-11")  # this run's own folder is not an earlier run
    assert carried_evaluation(context(lake), date(2026, 2, 11)) is None
