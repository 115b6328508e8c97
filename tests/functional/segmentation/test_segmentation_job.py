"""run_segmentation end to end on a lake: gold.customer_rfm, the history, model reuse and refit."""

from __future__ import annotations

import json
from datetime import date

import pyarrow as pa
import pytest

from rfmlake.errors import PipelineError
from rfmlake.pipeline.context import RunContext
from rfmlake.segmentation.job import REPORT_FILE, run_segmentation
from rfmlake.segmentation.segment import CUSTOMER_RFM_SCHEMA, HISTORY_SCHEMA
from rfmlake.settings import load_settings

AS_OF = date(2024, 6, 1)
NEXT = date(2024, 6, 8)


def context(lake, tmp_path, as_of=None, **overrides) -> RunContext:
    settings = load_settings(overrides={"segmentation.k_max": 5, **overrides})
    return RunContext(landing_dir=tmp_path / "landing", lake=lake, settings=settings, as_of=as_of)


def read(lake, name: str) -> pa.Table:
    return lake.read_arrow(lake.require("gold", name))


def test_writes_customer_rfm_and_history(lake, tmp_path, features_table):
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=80, as_of=AS_OF))
    ctx = context(lake, tmp_path, as_of=AS_OF)
    report = run_segmentation(ctx)

    rfm = read(lake, "customer_rfm")
    assert rfm.schema == CUSTOMER_RFM_SCHEMA
    assert rfm.column_names == [
        "customer_id", "as_of_date", "first_order_date", "last_order_date", "recency_days", "frequency",
        "monetary", "avg_order_value", "r_score", "f_score", "m_score", "rfm_cell", "rfm_segment",
        "cluster_id", "cluster_label", "model_version",
    ]
    ids = rfm.column("customer_id").to_pylist()
    assert ids == sorted(ids) and len(set(ids)) == 80
    assert set(rfm.column("model_version").to_pylist()) == {report.model_version}
    assert report.refitted and report.customers_scored == 80

    history = read(lake, "segment_membership_history").select(HISTORY_SCHEMA.names)
    assert history.schema.types == HISTORY_SCHEMA.types
    assert history.num_rows == 80
    assert set(history.column("as_of_date").to_pylist()) == {AS_OF}
    assert history.column("rfm_segment").to_pylist() == rfm.column("rfm_segment").to_pylist()

    stored = json.loads((ctx.run_dir / REPORT_FILE).read_text())
    assert stored["model_version"] == report.model_version
    assert (lake.models_dir / "segmentation" / report.model_version / "model.json").is_file()
    assert (lake.models_dir / "segmentation" / "current").read_text().strip() == report.model_version


def test_rerun_reuses_the_model_and_history_stays_idempotent(lake, tmp_path, features_table):
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=60, as_of=AS_OF))
    first = run_segmentation(context(lake, tmp_path))
    second = run_segmentation(context(lake, tmp_path))
    assert not second.refitted and second.model_version == first.model_version
    assert read(lake, "segment_membership_history").num_rows == 60

    # A new as_of accumulates, scored with the stored model (same version, same edges).
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=70, as_of=NEXT, seed=4))
    third = run_segmentation(context(lake, tmp_path, as_of=NEXT))
    assert not third.refitted and third.model_version == first.model_version
    history = read(lake, "segment_membership_history")
    assert history.num_rows == 130
    dates = history.column("as_of_date").to_pylist()
    assert dates.count(AS_OF) == 60 and dates.count(NEXT) == 70
    assert dates == sorted(dates)

    # Re-running that as_of replaces its rows instead of adding them again.
    run_segmentation(context(lake, tmp_path, as_of=NEXT))
    assert read(lake, "segment_membership_history").num_rows == 130


def test_refit_setting_fits_a_new_model(lake, tmp_path, features_table):
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=60, as_of=AS_OF))
    first = run_segmentation(context(lake, tmp_path))
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=60, as_of=NEXT, seed=9))
    refit = run_segmentation(context(lake, tmp_path, **{"segmentation.refit": True}))
    assert refit.refitted and "refit is true" in refit.refit_reason
    assert refit.model_version != first.model_version
    assert (lake.models_dir / "segmentation" / "current").read_text().strip() == refit.model_version
    reused = run_segmentation(context(lake, tmp_path))
    assert not reused.refitted and reused.model_version == refit.model_version


def test_empty_or_missing_mart_and_stale_as_of_fail_clearly(lake, tmp_path, features_table):
    with pytest.raises(PipelineError, match="does not exist.*run the dbt stage"):
        run_segmentation(context(lake, tmp_path))
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=0))
    with pytest.raises(PipelineError, match="no customer has a counted order in the window"):
        run_segmentation(context(lake, tmp_path))
    lake.write_arrow("gold", "customer_rfm_features", features_table(n=10, as_of=AS_OF))
    with pytest.raises(PipelineError, match="is for as_of 2024-06-01, but this run is for 2024-06-08"):
        run_segmentation(context(lake, tmp_path, as_of=NEXT))
    assert lake.current("gold", "customer_rfm") is None
