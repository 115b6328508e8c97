"""RfmClusterer: automatic k, value order, readable unique labels, determinism, small-data limits."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rfmlake.segmentation.clustering import RfmClusterer

BLOBS = (  # recency_days, frequency, monetary: champions, lapsed one-timers, a middle group
    (5, 12, 2000.0),
    (300, 1, 25.0),
    (60, 3, 200.0),
)


def three_blobs(per_blob: int = 20, seed: int = 0) -> pd.DataFrame:
    rng = np.random.RandomState(seed)
    rows = []
    for blob, (recency, frequency, monetary) in enumerate(BLOBS):
        for i in range(per_blob):
            rows.append({
                "customer_id": f"c{blob}-{i:03d}",
                "recency_days": int(recency * np.exp(rng.normal(0, 0.08))),
                "frequency": max(1, int(round(frequency * np.exp(rng.normal(0, 0.08))))),
                "monetary": round(monetary * float(np.exp(rng.normal(0, 0.08))), 2),
            })
    return pd.DataFrame(rows)


def fitted(data: pd.DataFrame, **params) -> RfmClusterer:
    return RfmClusterer(random_state=42, **params).fit(data)


def test_automatic_k_finds_three_obvious_blobs():
    clusterer = fitted(three_blobs(), k_min=2, k_max=6)
    assert clusterer.k_ == 3
    assert clusterer.k_selection_ == "automatic (silhouette)"
    assert [c.k for c in clusterer.selection_curve_] == [2, 3, 4, 5, 6]
    best = max(clusterer.selection_curve_, key=lambda c: c.silhouette)
    assert best.k == 3


def test_clusters_are_ordered_by_value_and_labelled_uniquely():
    data = three_blobs()
    clusterer = fitted(data, k=3)
    predicted = clusterer.predict(data)
    means = data.assign(cluster=predicted["cluster_id"]).groupby("cluster")["monetary"].mean()
    assert list(means.index) == [0, 1, 2]
    assert means.is_monotonic_decreasing
    # Each blob is one cluster: champions (2000) first, the middle group (200), the one-timers (25).
    blob_of = data["customer_id"].str[1].astype(int).map({0: 0, 2: 1, 1: 2})
    assert (predicted["cluster_id"] == blob_of).all()
    assert clusterer.labels_[0] == "Recent loyal high spenders"
    assert clusterer.labels_[2] == "Lapsed one-timers"
    assert len(set(clusterer.labels_)) == 3


def test_alike_clusters_get_numbered_labels():
    clusterer = fitted(three_blobs(per_blob=10), k=6)
    assert len(set(clusterer.labels_)) == 6
    numbered = [label for label in clusterer.labels_ if label[-1].isdigit()]
    assert numbered, clusterer.labels_  # six clusters over three blobs must repeat a base label
    for label in numbered:
        base = label.rsplit(" ", 1)[0]
        assert f"{base} 1" in clusterer.labels_


def test_row_order_never_changes_the_result():
    data = three_blobs()
    shuffled = data.sample(frac=1.0, random_state=11).reset_index(drop=True)
    first, second = fitted(data), fitted(shuffled)
    assert first.to_dict() == second.to_dict()
    merged = data.assign(a=first.predict(data)["cluster_label"]).merge(
        shuffled.assign(b=second.predict(shuffled)["cluster_label"]), on="customer_id")
    assert (merged["a"] == merged["b"]).all()


def test_round_trip_predicts_identically():
    data = three_blobs()
    clusterer = fitted(data)
    restored = RfmClusterer.from_dict(json.loads(json.dumps(clusterer.to_dict())))
    pd.testing.assert_frame_equal(restored.predict(data), clusterer.predict(data))
    assert restored.to_dict() == clusterer.to_dict()


def test_too_few_customers_fit_what_is_possible_and_say_so():
    two = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [1, 300],
                        "frequency": [5, 1], "monetary": [500.0, 10.0]})
    clusterer = fitted(two, k_min=2)
    assert clusterer.k_ == 2 and clusterer.k_selection_ == "limited by data"
    assert "needs at least 3 customers" in clusterer.notes_[0]
    assert clusterer.predict(two)["cluster_id"].tolist() == [0, 1]

    one = two.iloc[[1]]
    single = fitted(one)
    assert single.k_ == 1
    assert single.predict(one)["cluster_id"].tolist() == [0]


def test_fewer_distinct_points_than_k():
    same = pd.DataFrame({"customer_id": [f"c{i}" for i in range(6)], "recency_days": [10, 10, 10, 10, 90, 90],
                         "frequency": [2, 2, 2, 2, 1, 1], "monetary": [50.0] * 4 + [5.0] * 2})
    clusterer = fitted(same, k=4)
    assert clusterer.k_ == 2 and clusterer.k_selection_ == "limited by data"
    assert "only 2 distinct" in clusterer.notes_[0]
    assert clusterer.predict(same)["cluster_id"].tolist() == [0, 0, 0, 0, 1, 1]
    identical = same.iloc[:4]
    assert fitted(identical).k_ == 1


def test_bad_input_is_explained():
    data = three_blobs(per_blob=3)
    with pytest.raises(ValueError, match="appears more than once"):
        fitted(pd.concat([data, data.iloc[[0]]]))
    with pytest.raises(ValueError, match="'frequency' has negative"):
        fitted(data.assign(frequency=-1))
    with pytest.raises(RuntimeError, match="not fitted"):
        RfmClusterer().predict(data)


def test_k_is_chosen_on_a_seeded_sample_then_fitted_on_everyone():
    data = three_blobs(per_blob=50)
    clusterer = fitted(data, k_min=2, k_max=4, silhouette_sample_size=100)
    assert [c.rows for c in clusterer.selection_curve_] == [100, 100, 100]
    assert clusterer.k_ == 3
    assert clusterer.predict(data)["cluster_id"].value_counts().tolist() == [50, 50, 50]
    again = fitted(data.sample(frac=1.0, random_state=2), k_min=2, k_max=4, silhouette_sample_size=100)
    assert again.to_dict() == clusterer.to_dict()
