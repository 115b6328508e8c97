"""RfmClusterer: automatic k, value order, readable unique labels, determinism, small-data limits."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from rfmlake.segmentation.clustering import NOT_CLUSTERED, KCandidate, RfmClusterer, rank_candidates

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


def shop(n: int, seed: int = 3) -> pd.DataFrame:
    """n customers shaped like a web shop: most buy once, a few buy often; spend follows orders."""
    rng = np.random.RandomState(seed)
    one_time = rng.random_sample(n) < 0.6
    frequency = np.where(one_time, 1, 1 + rng.geometric(0.3, n))
    return pd.DataFrame({
        "customer_id": [f"s{i:05d}" for i in range(n)],
        "recency_days": rng.randint(1, 720, n),
        "frequency": frequency,
        "monetary": np.round(frequency * np.exp(rng.normal(np.log(40), 0.7, n)), 2),
    })


def fitted(data: pd.DataFrame, **params) -> RfmClusterer:
    return RfmClusterer(random_state=42, **params).fit(data)


def test_automatic_k_finds_three_obvious_blobs():
    clusterer = fitted(three_blobs(), k_min=2, k_max=6)
    assert clusterer.k_ == 3
    assert clusterer.k_selection_ == "automatic (elbow)" and clusterer.elbow_ == 3
    assert [c.k for c in clusterer.selection_curve_] == [2, 3, 4, 5, 6]
    best = max(clusterer.selection_curve_, key=lambda c: c.silhouette)
    assert best.k == 3
    assert clusterer.selection_curve_[1].smallest_share == pytest.approx(1 / 3)


def test_default_range_is_three_to_eight():
    clusterer = fitted(shop(1200))
    assert [c.k for c in clusterer.selection_curve_] == [3, 4, 5, 6, 7, 8]
    assert 3 <= clusterer.k_ <= 8


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
    assert clusterer.labels_[2] == "Lapsed one-time low spenders"
    assert len(set(clusterer.labels_)) == 3


LABEL = re.compile(r"^(Recent|Cooling|Lapsed) (loyal|repeat|one-time) (high|mid|low) spenders"
                   r"( \(((more|less|most|least) recent|(more|fewer|most|fewest) orders"
                   r"|(higher|lower|highest|lowest) spend|middle (recency|orders|spend))\))?$")


@pytest.mark.parametrize("k", range(2, 9))
def test_labels_are_readable_and_distinct_for_every_k_up_to_8(k):
    clusterer = fitted(shop(1500), k=k)
    assert clusterer.k_ == k
    assert len(set(clusterer.labels_)) == k, clusterer.labels_
    for label in clusterer.labels_:
        assert LABEL.match(label), label


def test_alike_clusters_are_told_apart_in_words():
    clusterer = fitted(three_blobs(per_blob=10), k=6, min_cluster_size=1)
    assert len(set(clusterer.labels_)) == 6
    qualified = [label for label in clusterer.labels_ if label.endswith(")")]
    assert qualified, clusterer.labels_  # six clusters over three blobs must repeat a base label
    for label in qualified:
        base = label.rsplit(" (", 1)[0]
        assert sum(other.startswith(base + " (") for other in clusterer.labels_) >= 2


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


def test_below_the_minimum_clustering_is_skipped_with_the_reason():
    two = pd.DataFrame({"customer_id": ["a", "b"], "recency_days": [1, 300],
                        "frequency": [5, 1], "monetary": [500.0, 10.0]})
    clusterer = fitted(two)
    assert clusterer.is_skipped and clusterer.k_ == 1 and clusterer.k_selection_ == "skipped"
    assert clusterer.labels_ == [NOT_CLUSTERED]
    assert "2 customer(s), 2 distinct point(s); at least 30 customers" in clusterer.notes_[0]
    assert clusterer.predict(two)["cluster_id"].tolist() == [0, 0]
    restored = RfmClusterer.from_dict(json.loads(json.dumps(clusterer.to_dict())))
    assert restored.is_skipped and restored.predict(two)["cluster_label"].tolist() == [NOT_CLUSTERED] * 2

    # 29 customers cannot make 3 clusters of 10; 30 can.
    assert fitted(shop(29)).is_skipped
    assert not fitted(shop(30)).is_skipped
    # The minimum is a setting: with one customer per cluster two customers make two clusters.
    assert fitted(two, k_min=2, min_cluster_size=1).k_ == 2
    assert fitted(two.iloc[[1]], k_min=2, min_cluster_size=1).is_skipped


def test_fewer_distinct_points_than_k():
    same = pd.DataFrame({"customer_id": [f"c{i}" for i in range(6)], "recency_days": [10, 10, 10, 10, 90, 90],
                         "frequency": [2, 2, 2, 2, 1, 1], "monetary": [50.0] * 4 + [5.0] * 2})
    clusterer = fitted(same, k=4, min_cluster_size=1)
    assert clusterer.k_ == 2 and clusterer.k_selection_ == "limited by data"
    assert "2 distinct point(s) carry at most 2 clusters" in clusterer.notes_[0]
    assert clusterer.predict(same)["cluster_id"].tolist() == [0, 0, 0, 0, 1, 1]
    identical = same.iloc[:4]
    assert fitted(identical, k=2, min_cluster_size=1).is_skipped
    assert fitted(identical, min_cluster_size=1).is_skipped


def test_every_cluster_holds_the_minimum_share():
    # Three big groups and a far-away handful (1% of customers) that the inertia elbow likes to split off.
    data = pd.concat([three_blobs(per_blob=330),
                      pd.DataFrame({"customer_id": [f"x{i}" for i in range(10)], "recency_days": 2,
                                    "frequency": 120, "monetary": [90_000.0 + i for i in range(10)]})])
    clusterer = fitted(data, k_min=3, k_max=6)
    shares = clusterer.predict(data)["cluster_id"].value_counts(normalize=True)
    assert shares.min() >= 0.02, (clusterer.k_, shares.to_dict(), clusterer.k_selection_)


def candidate(k: int, inertia: float, silhouette: float, smallest: float) -> KCandidate:
    return KCandidate(k=k, inertia=inertia, silhouette=silhouette, rows=1000, smallest_share=smallest)


def test_the_k_rule_elbow_then_silhouette_then_largest_smallest_cluster():
    inertia = {3: 1000.0, 4: 500.0, 5: 420.0, 6: 380.0, 7: 350.0, 8: 330.0}  # elbow at 4
    silhouette = {3: 0.30, 4: 0.32, 5: 0.36, 6: 0.31, 7: 0.30, 8: 0.29}

    def curve(smallest: dict[int, float]) -> list[KCandidate]:
        return [candidate(k, inertia[k], silhouette[k], smallest[k]) for k in inertia]

    rule = dict(n_rows=1000, min_cluster_share=0.02, min_cluster_size=10)
    roomy = rank_candidates(curve(dict.fromkeys(inertia, 0.10)), **rule)
    assert (roomy.preferred[0], roomy.rule, roomy.elbow) == (4, "automatic (elbow)", 4)
    assert roomy.preferred[1:] == [5, 6, 3, 7, 8]  # then by silhouette

    tiny_at_elbow = rank_candidates(curve({**dict.fromkeys(inertia, 0.10), 4: 0.005}), **rule)
    assert (tiny_at_elbow.preferred[0], tiny_at_elbow.rule) == (5, "automatic (silhouette)")
    assert 4 not in tiny_at_elbow.preferred

    # 2% of 1000 customers is 20; a cluster of 15 is too small even though min_cluster_size is 10.
    nothing_fits = rank_candidates(curve({3: 0.015, 4: 0.01, 5: 0.012, 6: 0.005, 7: 0.004, 8: 0.003}), **rule)
    assert (nothing_fits.preferred, nothing_fits.rule) == ([3], "automatic (largest smallest cluster)")
    assert "no k in 3..8 gives every cluster >= 2%" in nothing_fits.notes[0]


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
    clusterer = fitted(data, k_min=2, k_max=4, silhouette_sample_size=100, min_cluster_size=1)
    assert [c.rows for c in clusterer.selection_curve_] == [100, 100, 100]
    assert clusterer.k_ == 3
    assert clusterer.predict(data)["cluster_id"].value_counts().tolist() == [50, 50, 50]
    again = fitted(data.sample(frac=1.0, random_state=2), k_min=2, k_max=4, silhouette_sample_size=100,
                   min_cluster_size=1)
    assert again.to_dict() == clusterer.to_dict()
