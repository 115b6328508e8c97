"""KMeans segments on log-scaled recency, frequency and monetary (DESIGN.md section 5)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from rfmlake.rfm.scoring import feature_values

CLUSTER_FEATURES: tuple[str, ...] = ("recency_days", "frequency", "monetary")
# Below this many customers KMeans runs on one thread: starting and spin-waiting OpenMP threads costs
# far more than the work (10x slower on a busy 2-core machine), and one thread is also what makes
# the result independent of the core count.
SINGLE_THREAD_BELOW = 200_000


@dataclass(frozen=True)
class KCandidate:
    """One point of the k selection curve."""

    k: int
    inertia: float
    silhouette: float | None  # None where undefined (k = 1)
    rows: int                 # customers the candidate was fitted on (the sample, or all)
    # Calinski-Harabasz on the same sample; None where undefined, and on curves stored before it existed.
    calinski_harabasz: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"k": self.k, "inertia": self.inertia, "silhouette": self.silhouette,
                                "rows": self.rows}
        # Left out when None, so a model stored before this score existed keeps its version hash.
        if self.calinski_harabasz is not None:
            data["calinski_harabasz"] = self.calinski_harabasz
        return data


def log_features(features: pd.DataFrame) -> np.ndarray:
    """log1p of recency_days, frequency, monetary: all three are right-skewed (a few customers with
    very many orders or a large spend would otherwise decide every cluster). Net monetary below
    zero (returns netted) is clipped to 0 for the log; scores still use the raw value."""
    columns = []
    for column in CLUSTER_FEATURES:
        values = feature_values(features, column)
        if column != "monetary" and (values < 0).any():
            raise ValueError(f"column {column!r} has negative values; {column} cannot be below 0")
        columns.append(np.log1p(np.clip(values, 0.0, None)))
    return np.column_stack(columns)


def nearest_centroid(scaled: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid per row; the lower index on an exact tie, deterministically."""
    distances = ((scaled[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(distances, axis=1)


class RfmClusterer:
    """KMeans over StandardScaler(log1p(recency_days, frequency, monetary)).

    Parameters: k (fixed) or None to choose k in [k_min, k_max] by the silhouette score: each
    candidate k is fitted on a seeded sample of at most `silhouette_sample_size` customers (all of
    them when fewer) and scored there (highest wins, the smaller k on a tie); then the chosen k is
    fitted on every customer. `random_state` seeds KMeans (n_init=10) and the sample.

    Rows are sorted by customer_id before fitting, so the row order of the input never changes the
    result. Clusters are renumbered by value: cluster_id 0 has the highest mean monetary of its
    members (then frequency, then the lower recency on ties). Each gets a readable label from where
    its centroid sits in the clustering space (standardized log features, so 0 is the average
    customer on that axis): "Recent"/"Lapsed" (recency below or above average), then "loyal high
    spenders" (frequency and monetary above average), "high spenders", "one-time big spenders",
    "frequent low spenders", "low spenders" or "one-timers" (centroid frequency below 1.5 orders in
    original units). Comparing in the clustering space, not against raw medians, keeps a label
    consistent with why KMeans put those customers together. Labels shared by several clusters get
    " 1", " 2", ... in value order, so every label is unique.

    With too few customers or distinct points for the requested k, it fits the largest k the data
    allows (the number of distinct points, at least 1) and records why in `notes_`.

    Fitted attributes: scaler_mean_, scaler_scale_, centroids_ (scaled space, in cluster_id order),
    centroids_original_ (recency_days, frequency, monetary), labels_ (by cluster_id), k_,
    k_selection_ ("fixed", "automatic (silhouette)" or "limited by data"), selection_curve_
    (list of KCandidate: inertia, silhouette and Calinski-Harabasz per k, on the sample), notes_.
    """

    def __init__(
        self,
        k: int | None = None,
        k_min: int = 2,
        k_max: int = 8,
        random_state: int = 42,
        silhouette_sample_size: int = 10_000,
    ) -> None:
        self.k = k
        self.k_min = k_min
        self.k_max = k_max
        self.random_state = random_state
        self.silhouette_sample_size = silhouette_sample_size

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, features: pd.DataFrame) -> Self:
        self._check_params()
        if len(features) == 0:
            raise ValueError("cannot fit clusters on an empty frame: no customer to cluster")
        ordered = _sorted_by_customer(features)
        raw = log_features(ordered)
        scaler = StandardScaler().fit(raw)  # a constant feature gets scale 1: it carries no distance
        mean, scale = scaler.mean_.astype("float64"), scaler.scale_.astype("float64")
        # Scaled by hand, as predict() does with the stored mean/scale, so fit and reuse agree exactly.
        scaled = (raw - mean) / scale
        n_rows = len(scaled)
        n_distinct = len(np.unique(scaled, axis=0))
        # k is chosen on a seeded sample (all rows when few): the candidates' KMeans fits and
        # silhouettes are O(sample), and only the chosen k is fitted on every customer.
        sample = self._sample_rows(n_rows)
        sampled = scaled[sample]
        sample_distinct = n_distinct if len(sample) == n_rows else len(np.unique(sampled, axis=0))
        notes: list[str] = []
        curve: list[KCandidate] = []
        fitted: dict[int, KMeans] = {}

        if self.k is not None:
            k = min(self.k, n_distinct)
            selection = "fixed"
            if k < self.k:
                selection = "limited by data"
                notes.append(f"k={self.k} requested but the data has only {n_distinct} distinct "
                             f"customer point(s); fitted k={k}")
        else:
            k_high = min(self.k_max, sample_distinct, len(sample) - 1)
            if k_high < self.k_min:
                k = max(1, min(n_distinct, self.k_min))
                selection = "limited by data"
                notes.append(f"automatic k needs at least {self.k_min + 1} customers and {self.k_min} "
                             f"distinct points; got {n_rows} customer(s), {n_distinct} distinct; fitted k={k}")
            else:
                if k_high < self.k_max:
                    notes.append(f"k range capped at {k_high} (of k_max={self.k_max}) by "
                                 f"{len(sample)} sampled customer(s) with {sample_distinct} distinct points")
                for candidate in range(self.k_min, k_high + 1):
                    fitted[candidate] = self._kmeans(sampled, candidate)
                    curve.append(self._scored(sampled, fitted[candidate]))
                scored = [c for c in curve if c.silhouette is not None]
                if scored:
                    best = max(scored, key=lambda c: (c.silhouette, -c.k))
                    k, selection = best.k, "automatic (silhouette)"
                else:
                    k, selection = self.k_min, "limited by data"
                    notes.append("silhouette undefined for every k (a sample with one cluster); took k_min")

        final = fitted[k] if len(sample) == n_rows and k in fitted else self._kmeans(scaled, k)
        if not curve:
            curve.append(self._scored(sampled, final, labels=final.labels_[sample]))
        centroids = final.cluster_centers_
        assignment = nearest_centroid(scaled, centroids)
        order = self._value_order(ordered, assignment, k)
        centroids = centroids[order]
        centroids_original = np.expm1(centroids * scale + mean)

        self.scaler_mean_ = mean
        self.scaler_scale_ = scale
        self.centroids_ = centroids
        self.centroids_original_ = centroids_original
        self.labels_ = _cluster_labels(centroids, centroids_original)
        self.cluster_ids_ = list(range(k))
        self.k_ = k
        self.k_selection_ = selection
        self.selection_curve_ = curve
        self.notes_ = notes
        return self

    # -- predicting -----------------------------------------------------------------------------
    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """cluster_id (int16) and cluster_label per row, by nearest stored centroid; index kept."""
        self._check_fitted()
        scaled = (log_features(features) - self.scaler_mean_) / self.scaler_scale_
        cluster = nearest_centroid(scaled, self.centroids_) if len(scaled) else np.array([], dtype=int)
        labels = np.asarray(self.labels_, dtype=object)
        ids = np.asarray(self._ids(), dtype="int16")
        return pd.DataFrame(
            {"cluster_id": ids[cluster], "cluster_label": labels[cluster]},
            index=features.index,
        )

    # -- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "params": {
                "k": self.k, "k_min": self.k_min, "k_max": self.k_max,
                "random_state": self.random_state, "silhouette_sample_size": self.silhouette_sample_size,
            },
            "features": list(CLUSTER_FEATURES),
            "transform": "log1p then standard scaling",
            "scaler_mean": self.scaler_mean_.tolist(),
            "scaler_scale": self.scaler_scale_.tolist(),
            "centroids": self.centroids_.tolist(),
            "centroids_original": self.centroids_original_.tolist(),
            "labels": list(self.labels_),
            "k": self.k_,
            "k_selection": self.k_selection_,
            "selection_curve": [c.to_dict() for c in self.selection_curve_],
            "notes": list(self.notes_),
            # Only when aligned to a previous model, so models fitted before alignment keep their version.
            **({} if self._ids() == list(range(self.k_)) else {"cluster_ids": self._ids()}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RfmClusterer:
        try:
            clusterer = cls(**data["params"])
            clusterer.scaler_mean_ = np.asarray(data["scaler_mean"], dtype="float64")
            clusterer.scaler_scale_ = np.asarray(data["scaler_scale"], dtype="float64")
            clusterer.centroids_ = np.asarray(data["centroids"], dtype="float64").reshape(-1, 3)
            clusterer.centroids_original_ = np.asarray(data["centroids_original"], dtype="float64").reshape(-1, 3)
            clusterer.labels_ = [str(x) for x in data["labels"]]
            clusterer.k_ = int(data["k"])
            clusterer.k_selection_ = str(data["k_selection"])
            clusterer.selection_curve_ = [
                KCandidate(int(c["k"]), float(c["inertia"]),
                           None if c["silhouette"] is None else float(c["silhouette"]), int(c["rows"]),
                           None if c.get("calinski_harabasz") is None else float(c["calinski_harabasz"]))
                for c in data["selection_curve"]
            ]
            clusterer.notes_ = [str(x) for x in data.get("notes", [])]
            clusterer.cluster_ids_ = [int(x) for x in data.get("cluster_ids", range(clusterer.k_))]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"stored clusterer is malformed: {exc!r}") from None
        if len(set(clusterer.cluster_ids_)) != len(clusterer.cluster_ids_):
            raise ValueError("stored clusterer is malformed: cluster_ids repeat")
        if not (len(clusterer.centroids_) == len(clusterer.labels_) == len(clusterer.cluster_ids_) == clusterer.k_):
            raise ValueError("stored clusterer is malformed: centroids, labels and k disagree")
        return clusterer

    # -- identity across refits -----------------------------------------------------------------
    def align_to(self, previous: RfmClusterer, max_distance: float = 0.5) -> Self:
        """Give clusters that barely moved since `previous` their old cluster_id and label.

        Both models' centroids are compared in this model's clustering space (the previous
        centroids in original units go through this model's log1p + scaling). A Hungarian
        assignment (scipy linear_sum_assignment) on Euclidean centroid distance pairs new with
        old clusters; a pair within `max_distance` (standard deviations) keeps the old id and
        label. Other clusters take the free ids after the previous model's, in value order, and
        their own labels (made unique against the inherited ones). Records matches in notes_."""
        self._check_fitted()
        previous._check_fitted()
        old_log = np.log1p(np.clip(previous.centroids_original_, 0.0, None))
        old_points = (old_log - self.scaler_mean_) / self.scaler_scale_
        cost = np.sqrt(((self.centroids_[:, None, :] - old_points[None, :, :]) ** 2).sum(axis=2))
        rows, cols = linear_sum_assignment(cost)
        old_ids, old_labels = previous._ids(), list(previous.labels_)
        ids: list[int | None] = [None] * self.k_
        labels = list(self.labels_)
        kept = 0
        for new, old in zip(rows, cols, strict=True):
            if cost[new, old] <= max_distance:
                ids[new], labels[new] = old_ids[old], old_labels[old]
                kept += 1
        next_id = max(old_ids, default=-1) + 1
        taken = {label for label, i in zip(labels, ids, strict=True) if i is not None}
        for new in range(self.k_):
            if ids[new] is None:
                ids[new] = next_id
                next_id += 1
                base, suffix = labels[new], 2
                while labels[new] in taken:
                    labels[new] = f"{base} ({suffix})"
                    suffix += 1
                taken.add(labels[new])
        self.cluster_ids_ = [int(i) for i in ids if i is not None]
        self.labels_ = labels
        self.notes_ = [*self.notes_, f"aligned to the previous model: {kept} of {self.k_} cluster(s) kept their "
                                     f"id and label (centroid moved <= {max_distance} sd)"]
        return self

    def _ids(self) -> list[int]:
        return list(getattr(self, "cluster_ids_", range(self.k_)))

    # -- helpers --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.k is not None and self.k < 1:
            raise ValueError(f"k must be >= 1 or None, got {self.k}")
        if not 2 <= self.k_min <= self.k_max:
            raise ValueError(f"need 2 <= k_min <= k_max, got k_min={self.k_min}, k_max={self.k_max}")

    def _check_fitted(self) -> None:
        if not hasattr(self, "centroids_"):
            raise RuntimeError("RfmClusterer is not fitted; call fit() or load one with from_dict()")

    def _kmeans(self, scaled: np.ndarray, k: int) -> KMeans:
        model = KMeans(n_clusters=k, n_init=10, random_state=self.random_state)
        if len(scaled) < SINGLE_THREAD_BELOW:
            with threadpool_limits(limits=1):
                return model.fit(scaled)
        return model.fit(scaled)

    def _sample_rows(self, n_rows: int) -> np.ndarray:
        if n_rows <= self.silhouette_sample_size:
            return np.arange(n_rows)
        rng = np.random.RandomState(self.random_state)
        return np.sort(rng.choice(n_rows, size=self.silhouette_sample_size, replace=False))

    @staticmethod
    def _scored(points: np.ndarray, model: KMeans, labels: np.ndarray | None = None) -> KCandidate:
        """A curve point: inertia of the fit, silhouette and Calinski-Harabasz of `points` under `labels`."""
        labels = model.labels_ if labels is None else labels
        silhouette: float | None = None
        calinski: float | None = None
        if 2 <= len(np.unique(labels)) <= len(points) - 1:
            silhouette = float(silhouette_score(points, labels))
            calinski = float(calinski_harabasz_score(points, labels))
            if not np.isfinite(calinski):  # all points on their centroids: within-cluster dispersion 0
                calinski = None
        return KCandidate(k=int(model.n_clusters), inertia=float(model.inertia_), silhouette=silhouette,
                          rows=len(model.labels_), calinski_harabasz=calinski)

    @staticmethod
    def _value_order(features: pd.DataFrame, assignment: np.ndarray, k: int) -> list[int]:
        """Old cluster indices, most valuable first: mean monetary desc, frequency desc, recency asc."""
        frame = pd.DataFrame({
            "cluster": assignment,
            "monetary": feature_values(features, "monetary"),
            "frequency": feature_values(features, "frequency"),
            "recency_days": feature_values(features, "recency_days"),
        })
        means = frame.groupby("cluster").mean().reindex(range(k))
        # An empty cluster (KMeans can leave one when points coincide) sorts last.
        means = means.fillna({"monetary": -np.inf, "frequency": -np.inf, "recency_days": np.inf})
        keyed = sorted(range(k), key=lambda c: (-means.at[c, "monetary"], -means.at[c, "frequency"],
                                                  means.at[c, "recency_days"], c))
        return keyed

    def __repr__(self) -> str:
        return (f"RfmClusterer(k={self.k}, k_min={self.k_min}, k_max={self.k_max}, "
                f"random_state={self.random_state})")


def _sorted_by_customer(features: pd.DataFrame) -> pd.DataFrame:
    if "customer_id" not in features.columns:
        raise ValueError("clustering needs a customer_id column (rows are sorted by it for determinism)")
    if features["customer_id"].isna().any():
        raise ValueError("customer_id has missing values")
    duplicated = features["customer_id"].duplicated()
    if duplicated.any():
        raise ValueError(f"customer_id {features.loc[duplicated, 'customer_id'].iloc[0]!r} appears more than "
                         "once; the features need one row per customer")
    return features.sort_values("customer_id", kind="mergesort").reset_index(drop=True)


def _cluster_labels(centroids_scaled: np.ndarray, centroids_original: np.ndarray) -> list[str]:
    bases: list[str] = []
    for (recency_z, frequency_z, monetary_z), (_, frequency, _) in zip(centroids_scaled, centroids_original,
                                                                      strict=True):
        when = "Recent" if recency_z <= 0 else "Lapsed"
        frequent = frequency_z > 0
        big = monetary_z > 0
        one_timer = frequency < 1.5
        if big and frequent:
            what = "loyal high spenders"
        elif big:
            what = "one-time big spenders" if one_timer else "high spenders"
        elif frequent:
            what = "frequent low spenders"
        else:
            what = "one-timers" if one_timer else "low spenders"
        bases.append(f"{when} {what}")
    totals = Counter(bases)
    seen: Counter[str] = Counter()
    labels: list[str] = []
    for base in bases:  # already in value order, so " 1" is the more valuable of two alike
        if totals[base] == 1:
            labels.append(base)
        else:
            seen[base] += 1
            labels.append(f"{base} {seen[base]}")
    return labels
