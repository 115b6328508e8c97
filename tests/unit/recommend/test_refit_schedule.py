"""rfmlake.recommend.job.stored_model: which stored fit a run scores with instead of fitting
(recommendations.refit_every_days), from run folders written as the runner writes them and a fit
stored as the stage stores it."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pandas as pd
import pytest

from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.recommend.job import fit_parameters, make_model, model_folder, model_version, stored_model
from rfmlake.settings import Settings, load_settings

HISTORY = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "product_id": ["p1", "p2", "p1", "p3", "p2"],
                        "kind": ["purchase", "purchase", "purchase", "view", "purchase"]})
PRODUCTS = pd.DataFrame({"product_id": ["p1", "p2", "p3"], "category": ["x", "x", "y"], "brand": ["u", "v", "v"]})


def settings(**recommendations: Any) -> Settings:
    base = load_settings()
    return base.model_copy(update={"recommendations": base.recommendations.model_copy(update=recommendations)})


def store_fit(lake: Lake, as_of: str, config: Settings | None = None) -> str:
    recs = (config or load_settings()).recommendations
    model = make_model(recs).fit(HISTORY, PRODUCTS)
    version = model_version(recs, date.fromisoformat(as_of), model.digest())
    model.save(model_folder(lake, version), {"model_version": version, "as_of_date": as_of,
                                             "parameters": fit_parameters(recs)})
    return version


def write_run(lake: Lake, run_id: str, as_of: str, version: str, *, failed: bool = False, **report: Any) -> None:
    folder = lake.runs_dir / run_id
    folder.mkdir(parents=True)
    stages = [{"name": "recommendations", "status": "failed" if failed else "succeeded"}]
    summary = {"run_id": run_id, "stages": stages, **({"error": "stage recommendations failed"} if failed else {})}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "recommendations_report.json").write_text(json.dumps(
        {"status": "fitted", "as_of_date": as_of, "model_version": version, **report}))


def context(lake: Lake, config: Settings | None = None, *, full: bool = False) -> RunContext:
    return RunContext(landing_dir="landing", lake=lake, settings=config or load_settings(),
                      run_id="20260301T000000Z-cccccc", full=full)


@pytest.mark.parametrize(("as_of", "used"), [
    (date(2026, 2, 10), True), (date(2026, 2, 16), True), (date(2026, 2, 17), False), (date(2026, 2, 9), False)])
def test_used_while_as_of_is_fewer_than_refit_every_days_after_the_fit(lake: Lake, as_of: date, used: bool) -> None:
    version = store_fit(lake, "2026-02-10")
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10", version)
    got = stored_model(context(lake), as_of)
    assert (got is not None) == used
    if got is not None:
        assert got.version == version and got.origin() == {"run_id": "20260210T000000Z-aaaaaa",
                                                           "as_of_date": "2026-02-10"}
        assert got.model.n_items_ == 3 and got.model.similarity_.nnz > 0


def test_the_fit_counts_from_the_run_that_made_it_and_failed_runs_are_passed_over(lake: Lake) -> None:
    version = store_fit(lake, "2026-02-10")
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10", version)
    write_run(lake, "20260215T000000Z-bbbbbb", "2026-02-15", version,
              model_from={"run_id": "20260210T000000Z-aaaaaa", "as_of_date": "2026-02-10"})
    got = stored_model(context(lake), date(2026, 2, 16))
    assert got is not None and got.run_id == "20260210T000000Z-aaaaaa"
    assert stored_model(context(lake), date(2026, 2, 17)) is None
    other = store_fit(lake, "2026-02-16", settings(n_neighbors=20))
    write_run(lake, "20260216T000000Z-dddddd", "2026-02-16", other, failed=True)
    got = stored_model(context(lake), date(2026, 2, 16))
    assert got is not None and got.version == version


def test_full_runs_every_run_settings_changed_settings_and_missing_files_fit(lake: Lake) -> None:
    version = store_fit(lake, "2026-02-10")
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10", version)
    day = date(2026, 2, 11)
    assert stored_model(context(lake), day) is not None
    assert stored_model(context(lake, settings(evaluate_every_days=1, test_days=30)), day) is not None
    assert stored_model(context(lake, full=True), day) is None
    assert stored_model(context(lake, settings(refit_every_days=1)), day) is None
    assert stored_model(context(lake, settings(refit_every_days=0)), day) is None
    assert stored_model(context(lake, settings(view_weight=0.25)), day) is None
    assert stored_model(context(lake, settings(n=5)), day) is None
    (model_folder(lake, version) / "model.npz").unlink()
    assert stored_model(context(lake), day) is None


def test_a_skipped_run_or_no_run_means_fit(lake: Lake) -> None:
    assert stored_model(context(lake), date(2026, 2, 11)) is None
    version = store_fit(lake, "2026-02-10")
    write_run(lake, "20260210T000000Z-aaaaaa", "2026-02-10", version, status="skipped")
    assert stored_model(context(lake), date(2026, 2, 11)) is None
