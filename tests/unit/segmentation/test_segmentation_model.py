"""segment_features (the one code path) and the versioned model store."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rfmlake.errors import PipelineError
from rfmlake.segmentation.model import ModelStore, SegmentationModel
from rfmlake.segmentation.segment import CUSTOMER_RFM_SCHEMA, customer_rfm_to_arrow, segment_features
from rfmlake.settings import load_settings

AS_OF = date(2024, 6, 1)


def features(n: int = 60, seed: int = 5, as_of: date = AS_OF) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    recency = rng.randint(0, 365, n)
    frequency = rng.geometric(0.45, n)
    monetary = np.round(frequency * rng.lognormal(3.5, 0.6, n), 2)
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "as_of_date": as_of,
        "first_order_date": [as_of - timedelta(days=int(r) + 40) for r in recency],
        "last_order_date": [as_of - timedelta(days=int(r)) for r in recency],
        "recency_days": recency.astype("int32"),
        "frequency": frequency.astype("int32"),
        "monetary": [Decimal(f"{m:.2f}") for m in monetary],
        "avg_order_value": [Decimal(f"{m / f:.2f}") for m, f in zip(monetary, frequency, strict=True)],
        "reporting_currency": "EUR",
    })


def settings(**overrides):
    return load_settings(overrides={"segmentation.k_max": 4, **overrides})


def test_rows_have_the_gold_columns_sorted_by_customer():
    data = features().sample(frac=1.0, random_state=1)
    rfm, model, report = segment_features(data, settings())
    assert list(rfm.columns) == CUSTOMER_RFM_SCHEMA.names
    assert rfm["customer_id"].is_monotonic_increasing and rfm["customer_id"].is_unique
    assert (rfm["model_version"] == model.model_version).all()
    assert rfm["rfm_cell"].tolist() == [f"{r}{f}{m}" for r, f, m in
                                        zip(rfm["r_score"], rfm["f_score"], rfm["m_score"], strict=True)]
    assert report.refitted and report.refit_reason == "no stored model"
    assert report.customers_scored == 60
    assert sum(s.customers for s in report.segment_sizes) == 60
    assert [s.name for s in report.cluster_sizes] == model.clusterer.labels_
    assert sum(s.monetary_share for s in report.cluster_sizes) == pytest.approx(1.0)
    table = customer_rfm_to_arrow(rfm)
    assert table.schema == CUSTOMER_RFM_SCHEMA
    by_customer = dict(zip(data["customer_id"], data["monetary"], strict=True))
    assert table.column("monetary").to_pylist() == [by_customer[c] for c in rfm["customer_id"]]


def test_same_input_same_version_and_rows_in_any_row_order():
    data = features()
    first, model_a, _ = segment_features(data, settings())
    second, model_b, _ = segment_features(data.sample(frac=1.0, random_state=9), settings())
    assert model_a.model_version == model_b.model_version
    pd.testing.assert_frame_equal(first, second)


def test_a_stored_model_is_reused_and_scores_new_data_on_its_scale(tmp_path: Path):
    store = ModelStore(tmp_path / "models")
    _, model, _ = segment_features(features(seed=5), settings())
    store.save(model)
    loaded = store.current()
    assert loaded is not None and loaded.model_version == model.model_version
    newer = features(seed=6, as_of=AS_OF + timedelta(days=7))
    rfm, used, report = segment_features(newer, settings(), loaded)
    assert not report.refitted and model.model_version in report.refit_reason
    assert used is loaded
    expected = model.scorer.transform(rfm)
    assert rfm["r_score"].tolist() == expected["r_score"].tolist()
    assert segment_features(newer, settings(), loaded)[1].model_version == model.model_version


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"segmentation.refit": True}, "settings.segmentation.refit is true"),
        ({"segmentation.k": 3}, "segmentation settings changed (k: None -> 3)"),
        ({"segmentation.random_state": 7}, "random_state: 42 -> 7"),
    ],
)
def test_refit_when_asked_or_settings_changed(overrides, reason):
    _, stored, _ = segment_features(features(), settings())
    _, model, report = segment_features(features(), settings(**overrides), stored)
    assert report.refitted
    assert reason in report.refit_reason


def test_refit_when_rules_or_bins_differ(tmp_path: Path):
    _, stored, _ = segment_features(features(), settings())
    rules = tmp_path / "rules.yaml"
    shipped = stored.rules.to_dict()
    shipped["version"] = 2
    rules.write_text(json.dumps(shipped))  # JSON is YAML
    report = segment_features(features(), settings(**{"segmentation.rules_file": str(rules)}), stored)[2]
    assert report.refitted and "segment rules changed" in report.refit_reason
    assert report.rules_version == 2
    four = {**shipped, "n_bins": 4, "segments": [{"name": "All", "r": [1, 4], "fm": [1, 4]}]}
    rules.write_text(json.dumps(four))
    rfm, _, report = segment_features(
        features(), settings(**{"segmentation.rules_file": str(rules), "rfm.score_bins": 4}), stored)
    assert report.refitted and "n_bins=5, settings say 4" in report.refit_reason
    assert rfm["r_score"].max() == 4 and set(rfm["rfm_segment"]) == {"All"}


def test_store_round_trip_and_tamper_detection(tmp_path: Path):
    store = ModelStore(tmp_path)
    assert store.current() is None
    _, model, _ = segment_features(features(), settings())
    path = store.save(model)
    assert path == tmp_path / model.model_version / "model.json"
    assert (tmp_path / "current").read_text().strip() == model.model_version
    assert model.model_version.startswith("seg-") and len(model.model_version) == 16
    assert SegmentationModel.from_dict(json.loads(path.read_text())).to_dict() == model.to_dict()
    data = json.loads(path.read_text())
    data["scorer"]["edges"]["frequency"][0] += 1
    path.write_text(json.dumps(data))
    with pytest.raises(PipelineError, match="edited or damaged"):
        store.current()


def test_bad_features_are_explained():
    with pytest.raises(PipelineError, match="no customer has a counted order in the window"):
        segment_features(features().iloc[0:0], settings())
    two_dates = features()
    two_dates.loc[0, "as_of_date"] = date(2024, 5, 1)
    with pytest.raises(PipelineError, match="one as_of_date"):
        segment_features(two_dates, settings())
    with pytest.raises(PipelineError, match="more than once"):
        segment_features(pd.concat([features(), features().iloc[[3]]]), settings())
    with pytest.raises(PipelineError, match="lacks column"):
        segment_features(features().drop(columns="monetary"), settings())
    negative = features().assign(recency_days=-1)
    with pytest.raises(PipelineError, match="'recency_days' has negative"):
        segment_features(negative, settings())
