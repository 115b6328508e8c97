"""Calinski-Harabasz on the k selection curve: computed on the same seeded sample as the
silhouette, stored with the model, and absent from models stored before it (their version holds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score

from rfmlake.segmentation.clustering import RfmClusterer, log_features


def features(n: int = 300, seed: int = 5) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    frequency = rng.geometric(0.35, n)
    return pd.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "recency_days": rng.randint(0, 500, n),
        "frequency": frequency,
        "monetary": np.round(frequency * rng.lognormal(3.5, 0.8, n), 2),
    })


def test_calinski_harabasz_is_scored_on_the_sample_for_every_k() -> None:
    data = features()
    clusterer = RfmClusterer(k_min=2, k_max=5, silhouette_sample_size=120, random_state=7).fit(data)
    raw = log_features(data.sort_values("customer_id").reset_index(drop=True))
    scaled = (raw - clusterer.scaler_mean_) / clusterer.scaler_scale_
    sample = scaled[np.sort(np.random.RandomState(7).choice(len(data), size=120, replace=False))]
    for point in clusterer.selection_curve_:
        labels = KMeans(n_clusters=point.k, n_init=10, random_state=7).fit(sample).labels_
        assert point.rows == 120
        assert point.calinski_harabasz == pytest.approx(calinski_harabasz_score(sample, labels), rel=1e-9)


def test_stored_with_the_model_and_old_curves_keep_their_version() -> None:
    clusterer = RfmClusterer(k_min=2, k_max=4).fit(features())
    stored = clusterer.to_dict()
    assert all(c["calinski_harabasz"] > 0 for c in stored["selection_curve"])
    assert RfmClusterer.from_dict(stored).to_dict() == stored
    old = {**stored, "selection_curve": [{k: v for k, v in c.items() if k != "calinski_harabasz"}
                                         for c in stored["selection_curve"]]}
    reloaded = RfmClusterer.from_dict(old)
    assert all(c.calinski_harabasz is None for c in reloaded.selection_curve_)
    assert reloaded.to_dict() == old  # same content, so the same model_version hash as before


def test_fixed_k_curve_has_one_point_with_both_scores() -> None:
    clusterer = RfmClusterer(k=3).fit(features())
    (point,) = clusterer.selection_curve_
    assert point.k == 3 and point.silhouette is not None and point.calinski_harabasz is not None
