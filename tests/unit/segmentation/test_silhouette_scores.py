"""Choosing k scores every candidate's silhouette from one pass over the distances; the values are
sklearn's silhouette_score, labelling by labelling."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from rfmlake.segmentation.clustering import silhouette_scores


def test_the_scores_are_sklearns_for_each_labelling() -> None:
    rng = np.random.RandomState(3)
    points = np.vstack([rng.normal(centre, 0.4, size=(300, 3)) for centre in (0, 2, 5)])
    labelings = [KMeans(n_clusters=k, n_init=3, random_state=0).fit(points).labels_ for k in range(2, 7)]
    singleton = labelings[0].copy()
    singleton[7] = 9  # a cluster of one point (scores 0, as in sklearn), labels that are not 0..k-1
    labelings += [singleton, rng.randint(0, 4, size=len(points))]

    ours = silhouette_scores(points, labelings)
    assert np.allclose(ours, [silhouette_score(points, labels) for labels in labelings], rtol=0, atol=1e-9)
    assert silhouette_scores(points, []) == []


def test_many_chunks_give_the_same_scores() -> None:
    import sklearn

    rng = np.random.RandomState(5)
    points = rng.normal(size=(2000, 3))
    labels = [rng.randint(0, 5, size=len(points))]
    with sklearn.config_context(working_memory=1):  # 1 MB: distance rows in chunks of about 60
        chunked = silhouette_scores(points, labels)
    assert np.isclose(chunked[0], silhouette_score(points, labels[0]), rtol=0, atol=1e-9)
