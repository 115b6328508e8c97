"""The value models on a schedule (value.refit_every_days), through the pipeline runner: a run fewer
than that many days after the last fit predicts with that model (naming the run that fitted it) on
its own as_of; a run that many days later, changed settings, `--full` and refit_every_days 1 fit
again; the model of a failed run is never what a later run uses."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rfmlake.errors import PipelineError
from rfmlake.lake import Lake
from rfmlake.pipeline.context import RunContext
from rfmlake.pipeline.definition import PIPELINE, Stage
from rfmlake.pipeline.runner import run_pipeline
from rfmlake.reporting import build_quality_report, render_html
from rfmlake.settings import load_settings
from value_lakes import AS_OF, write_simulated_gold

VALUE = tuple(s for s in PIPELINE if s.name == "customer_value")
AFTER = PIPELINE[PIPELINE.index(VALUE[0]) + 1]  # the stage the failing run fails in


@pytest.fixture()
def value_lake(lake: Lake) -> Lake:
    write_simulated_gold(lake, n=1500, seed=2, bgnbd=(0.9, 30.0, 1.5, 4.0), gamma_gamma=(5.0, 4.0, 20.0),
                         max_first_days=700, zero_value_orders=5)
    return lake


def move_as_of(lake: Lake, days: int) -> None:
    """gold.customer_rfm_features `days` later than AS_OF: the same purchases, everyone's recency moved."""
    ref = lake.current("gold", "customer_rfm_features")
    assert ref is not None
    table = pq.read_table(ref.path)
    table = table.set_column(table.schema.get_field_index("as_of_date"), "as_of_date",
                             pa.array([AS_OF + timedelta(days=days)] * table.num_rows, pa.date32()))
    recency = pc.add(table.column("recency_days"), pa.scalar(days, pa.int32()))
    table = table.set_column(table.schema.get_field_index("recency_days"), "recency_days", recency)
    lake.write_arrow("gold", "customer_rfm_features", table)


def run_value(lake: Lake, *, full: bool = False, stages: tuple[Stage, ...] = VALUE,
              **overrides: Any) -> tuple[str, dict]:
    ctx = RunContext(landing_dir=lake.root.parent / "landing", lake=lake, settings=load_settings(overrides=overrides),
                     full=full)
    run_pipeline(ctx, stages=stages)
    return ctx.run_id, json.loads((ctx.run_dir / "customer_value_report.json").read_text())


def values(lake: Lake) -> dict[str, tuple]:
    ref = lake.current("gold", "customer_value")
    assert ref is not None
    rows = pq.read_table(ref.path).to_pylist()
    return {r["customer_id"]: (r["as_of_date"], r["p_alive"], r["predicted_clv_365d"], r["model_version"])
            for r in rows}


def test_runs_within_the_schedule_predict_with_the_model_of_the_run_that_fitted_it(value_lake: Lake) -> None:
    first_id, first = run_value(value_lake)
    assert first["status"] == "fitted" and "model_from" not in first and first["calibration"]
    fitted = values(value_lake)

    second_id, second = run_value(value_lake)  # the same as_of: the same model, the same values
    origin = {"run_id": first_id, "as_of_date": AS_OF.isoformat()}
    assert second["model_from"] == origin and second["model_version"] == first["model_version"]
    assert second["bgnbd"] == first["bgnbd"] and second["calibration"] == first["calibration"]
    assert any(f"fitted in run {first_id}" in note for note in second["notes"])
    assert values(value_lake) == fitted
    summary = json.loads((value_lake.runs_dir / second_id / "summary.json").read_text())
    assert summary["stages"][0]["status"] == "succeeded"

    move_as_of(value_lake, 6)  # six days on: still that model, on this as_of's recency and age
    _, later = run_value(value_lake)
    assert later["model_from"] == origin and later["as_of_date"] == (AS_OF + timedelta(days=6)).isoformat()
    moved = values(value_lake)
    assert {v[0] for v in moved.values()} == {AS_OF + timedelta(days=6)}
    assert {v[3] for v in moved.values()} == {first["model_version"]}
    assert sum(v[1] for v in moved.values()) < sum(v[1] for v in fitted.values())  # longer silence, less alive

    move_as_of(value_lake, 7)  # refit_every_days (7) after the fit: fitted again
    _, refitted = run_value(value_lake)
    assert "model_from" not in refitted and refitted["model_version"] != first["model_version"]
    assert refitted["calibration"] is not None


def test_full_runs_every_run_settings_and_changed_settings_fit_again(value_lake: Lake) -> None:
    _, first = run_value(value_lake)
    for options in ({"full": True}, {"value.refit_every_days": 1}, {"value.margin": 0.5}):
        full = bool(options.pop("full", False))
        _, report = run_value(value_lake, full=full, **options)
        assert "model_from" not in report, options
    _, again = run_value(value_lake, **{"value.margin": 0.5})  # the same changed settings: that model predicts
    assert again["model_from"]["as_of_date"] == AS_OF.isoformat() and again["margin"] == 0.5
    assert first["margin"] == 1.0


def test_a_failed_runs_model_is_never_used(value_lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    run_value(value_lake)
    failing = RunContext(landing_dir=value_lake.root.parent / "landing", lake=value_lake,
                         settings=load_settings(overrides={"value.margin": 0.5}))
    module, function = AFTER.entry.split(":")

    def fail(*_: Any) -> None:
        raise RuntimeError("injected after the customer_value stage")

    with monkeypatch.context() as patch:
        patch.setattr(module + "." + function, fail)
        with pytest.raises(PipelineError, match=AFTER.name):
            run_pipeline(failing, stages=(*VALUE, AFTER))
    failed = json.loads((failing.run_dir / "customer_value_report.json").read_text())
    assert failed["status"] == "fitted" and "model_from" not in failed
    _, after = run_value(value_lake, **{"value.margin": 0.5})
    assert "model_from" not in after  # the latest successful run had margin 1.0: fitted again


def test_a_missing_model_file_means_a_fit(value_lake: Lake) -> None:
    _, first = run_value(value_lake)
    model_file = value_lake.models_dir / "value" / first["model_version"] / "model.json"
    assert model_file.is_file()
    model_file.unlink()
    _, second = run_value(value_lake)
    assert "model_from" not in second and Path(second["model_path"]).is_file()


def test_the_quality_report_says_which_run_fitted_the_model(value_lake: Lake) -> None:
    stages = tuple(s for s in PIPELINE if s.name in {"segmentation", "customer_value"})
    first_id, _ = run_value(value_lake, stages=stages)
    second_id, _ = run_value(value_lake, stages=stages)
    quality = build_quality_report(value_lake.root, value_lake.runs_dir / second_id)
    assert quality["customer_value"]["model_from"] == {"run_id": first_id, "as_of_date": AS_OF.isoformat()}
    assert f"Fitted by run <code>{first_id}</code>" in render_html(quality)
