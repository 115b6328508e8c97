"""KMeans segments on log-scaled recency, frequency and monetary (DESIGN.md section 5)."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import calinski_harabasz_score, pairwise_distances_chunked
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from rfmlake.rfm.scoring import feature_values

CLUSTER_FEATURES: tuple[str, ...] = ("recency_days", "frequency", "monetary")
# Below this many customers KMeans runs on one thread: starting and spin-waiting OpenMP threads costs
# far more than the work (10x slower on a busy 2-core machine), and one thread is also what makes
# the result independent of the core count.
SINGLE_THREAD_BELOW = 200_000
# Label tiers: a centroid more than this many standard deviations below / above the average customer
# (in the standardized log space) is in the low / top third of a normal distribution.
TIER = 0.43
NOT_CLUSTERED = "Not clustered (too little data)"
SKIPPED = "skipped"


@dataclass(frozen=True)
class KCandidate:
    """One point of the k selection curve."""

    k: int
    inertia: float
    silhouette: float | None  # None where undefined (k = 1)
    rows: int                 # customers the candidate was fitted on (the sample, or all)
    # Calinski-Harabasz on the same sample; None where undefined, and on curves stored before it existed.
    calinski_harabasz: float | None = None
    # Share of the sample in the smallest cluster; None on curves stored before it was recorded.
    smallest_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"k": self.k, "inertia": self.inertia, "silhouette": self.silhouette,
                                "rows": self.rows}
        # Left out when None, so a model stored before these scores existed keeps its version hash.
        if self.calinski_harabasz is not None:
            data["calinski_harabasz"] = self.calinski_harabasz
        if self.smallest_share is not None:
            data["smallest_share"] = self.smallest_share
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


def silhouette_scores(points: np.ndarray, labelings: list[np.ndarray]) -> list[float]:
    """sklearn's silhouette_score (euclidean) of several labellings of the same points, from one pass
    over their pairwise distances instead of one per labelling: the distances, which do not depend
    on the labels, were 80% of choosing k. Each chunk of distance rows (sklearn's
    pairwise_distances_chunked: memory bounded by its working_memory) is summed per cluster with one
    matrix product per labelling. Each labelling needs 2 <= clusters <= len(points) - 1."""
    if not labelings:
        return []
    encoded = []
    for labels in labelings:
        _, codes = np.unique(labels, return_inverse=True)
        freqs = np.bincount(codes)
        encoded.append((codes, freqs, np.eye(len(freqs))[codes]))
    values = [np.empty(len(points)) for _ in labelings]

    def reduce(chunk: np.ndarray, start: int) -> None:
        rows = np.arange(len(chunk))
        for (codes, freqs, members), out in zip(encoded, values, strict=True):
            own = codes[start:start + len(chunk)]
            sums = chunk @ members  # distance from each row to every member of each cluster, summed
            intra = sums[rows, own]
            sums[rows, own] = np.inf
            inter = (sums / freqs).min(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                intra = intra / (freqs[own] - 1)
                silhouette = (inter - intra) / np.maximum(intra, inter)
            out[start:start + len(chunk)] = np.nan_to_num(silhouette)  # a cluster of one scores 0, as in sklearn

    for _ in pairwise_distances_chunked(points, reduce_func=reduce):
        pass
    return [float(np.mean(out)) for out in values]


class RfmClusterer:
    """KMeans over StandardScaler(log1p(recency_days, frequency, monetary)).

    Parameters: k (fixed) or None to choose k in [k_min, k_max] (default 3..8) by this rule:

    1. every candidate k is fitted on a seeded sample of at most `silhouette_sample_size` customers
       (all of them when fewer) and scored there: inertia, silhouette, Calinski-Harabasz and the
       share of customers in its smallest cluster;
    2. a candidate is *eligible* when its smallest cluster holds at least `min_cluster_share` of the
       customers and at least `min_cluster_size` customers (a segment too small to act on is no segment);
    3. k is the elbow of the inertia curve (Kneedle, `kneed.KneeLocator`, convex and decreasing) when
       the elbow is eligible; otherwise the eligible k with the highest silhouette (the smaller k on
       a tie); when no candidate is eligible, the k whose smallest cluster is largest (noted);
    4. the chosen k is fitted on every customer; if that fit breaks the share rule the next
       preferred candidate is tried.

    `random_state` seeds KMeans (n_init=10) and the sample. Rows are sorted by customer_id before
    fitting, so the row order of the input never changes the result. Clusters are renumbered by
    value: cluster_id 0 has the highest mean monetary of its members (then frequency, then the lower
    recency on ties).

    Labels are read from where each centroid sits in the clustering space (standardized log
    features, 0 = the average customer; the tiers cut at +-0.43 sd, the thirds of a normal):
    "Recent" / "Cooling" / "Lapsed" (recency), "loyal" / "repeat" / "one-time" (frequency above the
    top tier / below it / centroid below 1.5 orders) and "high" / "mid" / "low spenders" (monetary),
    e.g. "Recent loyal high spenders". Clusters sharing such a label are told apart by the axis on
    which they differ most, in words ("(higher spend)", "(less recent)", ...), so every label is
    distinct and readable. Comparing in the clustering space, not against raw medians, keeps a label
    consistent with why KMeans put those customers together.

    Minimum (below it clustering is skipped, not failed): at least `min_cluster_size` customers per
    cluster and as many distinct customer points as clusters, for k_min clusters (automatic k) or
    2 clusters (fixed k, which is lowered to what the data allows). A skipped clusterer has one
    pseudo-cluster, id 0, labelled NOT_CLUSTERED, k_selection_ "skipped" and the reason in notes_.

    Fitted attributes: scaler_mean_, scaler_scale_, centroids_ (scaled space, in cluster_id order),
    centroids_original_ (recency_days, frequency, monetary), labels_ (by cluster_id), k_,
    k_selection_ ("fixed", "automatic (elbow)", "automatic (silhouette)", "automatic (largest
    smallest cluster)", "limited by data" or "skipped"), elbow_ (the inertia elbow, None if none),
    selection_curve_ (list of KCandidate), notes_.
    """

    def __init__(
        self,
        k: int | None = None,
        k_min: int = 3,
        k_max: int = 8,
        random_state: int = 42,
        silhouette_sample_size: int = 10_000,
        min_cluster_share: float = 0.02,
        min_cluster_size: int = 10,
    ) -> None:
        self.k = k
        self.k_min = k_min
        self.k_max = k_max
        self.random_state = random_state
        self.silhouette_sample_size = silhouette_sample_size
        self.min_cluster_share = min_cluster_share
        self.min_cluster_size = min_cluster_size

    @property
    def is_skipped(self) -> bool:
        """True when the data was below the clustering minimum (one pseudo-cluster, NOT_CLUSTERED)."""
        self._check_fitted()
        return self.k_selection_ == SKIPPED

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
        # The largest k the data can carry: min_cluster_size customers and one distinct point per cluster.
        k_possible = min(n_distinct, n_rows // self.min_cluster_size)
        self.scaler_mean_ = mean
        self.scaler_scale_ = scale
        self.elbow_: int | None = None
        smallest = 2 if self.k is not None else self.k_min
        if k_possible < smallest:
            return self._skip(scaled, n_rows, n_distinct, smallest)

        # k is chosen on a seeded sample (all rows when few): the candidates' KMeans fits and
        # silhouettes are O(sample), and only the chosen k is fitted on every customer.
        sample = self._sample_rows(n_rows)
        sampled = scaled[sample]
        notes: list[str] = []
        curve: list[KCandidate] = []
        fitted: dict[int, KMeans] = {}

        if self.k is not None:
            k = min(self.k, k_possible)
            preferred, selection = [k], "fixed"
            if k < self.k:
                selection = "limited by data"
                notes.append(f"k={self.k} requested but {n_rows} customer(s) with {n_distinct} distinct point(s) "
                             f"carry at most {k_possible} clusters of >= {self.min_cluster_size} customers; "
                             f"fitted k={k}")
        else:
            k_high = min(self.k_max, k_possible, len(np.unique(sampled, axis=0)))
            if k_high < self.k_min:  # only when the sample has fewer distinct points than everyone
                return self._skip(scaled, n_rows, n_distinct, self.k_min)
            if k_high < self.k_max:
                notes.append(f"k range capped at {k_high} (of k_max={self.k_max}): {n_rows} customer(s) with "
                             f"{n_distinct} distinct point(s) carry no more clusters of >= "
                             f"{self.min_cluster_size} customers")
            for candidate in range(self.k_min, k_high + 1):
                fitted[candidate] = self._kmeans(sampled, candidate)
            curve = self._scored(sampled, list(fitted.values()))
            choice = rank_candidates(curve, n_rows=n_rows, min_cluster_share=self.min_cluster_share,
                                     min_cluster_size=self.min_cluster_size)
            preferred, selection, self.elbow_ = choice.preferred, choice.rule, choice.elbow
            notes.extend(choice.notes)

        k, final, assignment = self._final_fit(scaled, sample, fitted, preferred, n_rows, notes)
        if self.k is None and k != preferred[0]:
            selection = ("automatic (silhouette)" if selection == "automatic (elbow)" else selection)
        if not curve:
            curve = self._scored(sampled, [final], labels=[final.labels_[sample]])
        order = self._value_order(ordered, assignment, k)
        centroids = final.cluster_centers_[order]
        centroids_original = np.expm1(centroids * scale + mean)

        self.centroids_ = centroids
        self.centroids_original_ = centroids_original
        self.labels_ = _cluster_labels(centroids, centroids_original)
        self.cluster_ids_ = list(range(k))
        self.k_ = k
        self.k_selection_ = selection
        self.selection_curve_ = curve
        self.notes_ = notes
        return self

    def _final_fit(self, scaled: np.ndarray, sample: np.ndarray, fitted: dict[int, KMeans], preferred: list[int],
                   n_rows: int, notes: list[str]) -> tuple[int, KMeans, np.ndarray]:
        """Fit the first preferred k on every customer whose clusters keep the share rule (the sample's
        clusters can differ slightly from everyone's); the first one if none does."""
        first: tuple[int, KMeans, np.ndarray] | None = None
        for k in preferred:
            model = fitted[k] if len(sample) == n_rows and k in fitted else self._kmeans(scaled, k)
            assignment = nearest_centroid(scaled, model.cluster_centers_)
            result = (k, model, assignment)
            first = first or result
            share = float(np.bincount(assignment, minlength=k).min()) / n_rows
            if self.k is not None or len(preferred) == 1 or _share_ok(share, n_rows, self.min_cluster_share,
                                                                       self.min_cluster_size):
                if k != preferred[0]:
                    notes.append(f"k={preferred[0]} fitted on every customer left a cluster below the minimum "
                                 f"share; took the next preferred k={k}")
                return result
        assert first is not None
        return first

    def _skip(self, scaled: np.ndarray, n_rows: int, n_distinct: int, needed_k: int) -> Self:
        """Below the minimum: one pseudo-cluster at the average customer, labelled NOT_CLUSTERED."""
        needed = needed_k * self.min_cluster_size
        self.centroids_ = np.zeros((1, scaled.shape[1]))
        self.centroids_original_ = np.expm1(self.scaler_mean_)[None, :]
        self.labels_ = [NOT_CLUSTERED]
        self.cluster_ids_ = [0]
        self.k_ = 1
        self.k_selection_ = SKIPPED
        self.selection_curve_ = []
        self.notes_ = [f"clustering skipped: {n_rows} customer(s), {n_distinct} distinct point(s); at least "
                       f"{needed} customers ({self.min_cluster_size} per cluster) and {needed_k} distinct points "
                       f"are needed for {needed_k} clusters. Every customer has cluster_id 0, "
                       f"cluster_label {NOT_CLUSTERED!r}; the RFM scores and segments do not need clustering"]
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
                "min_cluster_share": self.min_cluster_share, "min_cluster_size": self.min_cluster_size,
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
            **({} if getattr(self, "elbow_", None) is None else {"elbow": self.elbow_}),
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
                           None if c.get("calinski_harabasz") is None else float(c["calinski_harabasz"]),
                           None if c.get("smallest_share") is None else float(c["smallest_share"]))
                for c in data["selection_curve"]
            ]
            clusterer.elbow_ = None if data.get("elbow") is None else int(data["elbow"])
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
        if not 0.0 <= self.min_cluster_share < 0.5:
            raise ValueError(f"min_cluster_share must be in [0, 0.5), got {self.min_cluster_share}")
        if self.min_cluster_size < 1:
            raise ValueError(f"min_cluster_size must be >= 1, got {self.min_cluster_size}")

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
    def _scored(points: np.ndarray, models: list[KMeans],
                labels: list[np.ndarray] | None = None) -> list[KCandidate]:
        """The curve points of fits of `points`: each one's inertia, and silhouette and
        Calinski-Harabasz of `points` under its labels (the models' own unless given)."""
        labelings = [model.labels_ for model in models] if labels is None else labels
        scorable = [i for i, found in enumerate(labelings) if 2 <= len(np.unique(found)) <= len(points) - 1]
        silhouettes = dict(zip(scorable, silhouette_scores(points, [labelings[i] for i in scorable]), strict=True))
        curve = []
        for i, (model, found) in enumerate(zip(models, labelings, strict=True)):
            silhouette = silhouettes.get(i)
            calinski: float | None = None
            if silhouette is not None:
                calinski = float(calinski_harabasz_score(points, found))
                if not np.isfinite(calinski):  # all points on their centroids: within-cluster dispersion 0
                    calinski = None
            smallest = float(np.bincount(found, minlength=int(model.n_clusters)).min()) / len(found)
            curve.append(KCandidate(k=int(model.n_clusters), inertia=float(model.inertia_), silhouette=silhouette,
                                    rows=len(model.labels_), calinski_harabasz=calinski, smallest_share=smallest))
        return curve

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
                f"random_state={self.random_state}, min_cluster_share={self.min_cluster_share}, "
                f"min_cluster_size={self.min_cluster_size})")


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


@dataclass(frozen=True)
class KChoice:
    """The automatic k rule's answer: candidate ks in order of preference, the rule that put the
    first one first, the inertia elbow (None if none) and notes for the reader."""

    preferred: list[int]
    rule: str
    elbow: int | None
    notes: tuple[str, ...] = ()


def _share_ok(share: float | None, n_rows: int, min_cluster_share: float, min_cluster_size: int) -> bool:
    # The size is a count computed back from a share: allow for the float round trip (10/30*30).
    return share is not None and share >= min_cluster_share and share * n_rows + 1e-9 >= min_cluster_size


def rank_candidates(curve: list[KCandidate], *, n_rows: int, min_cluster_share: float,
                    min_cluster_size: int) -> KChoice:
    """The automatic k rule (RfmClusterer docstring, steps 2-3) over a scored selection curve:
    eligible candidates have a smallest cluster >= min_cluster_share of `n_rows` customers and >=
    min_cluster_size customers; the elbow of inertia first when eligible, then the eligible ones by
    silhouette (smaller k on a tie); with none eligible, the k whose smallest cluster is largest."""
    eligible = [c for c in curve if c.silhouette is not None
                and _share_ok(c.smallest_share, n_rows, min_cluster_share, min_cluster_size)]
    elbow = _elbow(curve)
    by_silhouette = [c.k for c in sorted(eligible, key=lambda c: (-float(c.silhouette or 0.0), c.k))]
    if elbow is not None and elbow in by_silhouette:
        return KChoice([elbow, *[k for k in by_silhouette if k != elbow]], "automatic (elbow)", elbow)
    if by_silhouette:
        return KChoice(by_silhouette, "automatic (silhouette)", elbow)
    ranked = sorted(curve, key=lambda c: (-(c.smallest_share or 0.0), c.k))
    note = (f"no k in {min(c.k for c in curve)}..{max(c.k for c in curve)} gives every cluster >= "
            f"{min_cluster_share:.0%} of customers and >= {min_cluster_size} customers; took the k whose "
            "smallest cluster is largest")
    return KChoice([ranked[0].k], "automatic (largest smallest cluster)", elbow, (note,))


def _elbow(curve: list[KCandidate]) -> int | None:
    """The elbow of inertia over k (Kneedle via kneed: convex, decreasing); None when the curve has
    fewer than three points or no elbow (kneed warns then, which is not news here)."""
    if len(curve) < 3:
        return None
    from kneed import KneeLocator  # imports scipy.signal (a second): only when k is chosen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        knee = KneeLocator([c.k for c in curve], [c.inertia for c in curve], curve="convex",
                           direction="decreasing").knee
    return None if knee is None else int(knee)


_TIER_WORDS: dict[int, tuple[str, str, str]] = {  # axis -> (noun, comparative up, comparative down)
    0: ("recency", "less recent", "more recent"),
    1: ("orders", "more orders", "fewer orders"),
    2: ("spend", "higher spend", "lower spend"),
}


def _base_label(scaled: np.ndarray, frequency: float) -> str:
    recency_z, frequency_z, monetary_z = (float(v) for v in scaled)
    when = "Recent" if recency_z <= -TIER else "Lapsed" if recency_z >= TIER else "Cooling"
    how_often = "one-time" if frequency < 1.5 else "loyal" if frequency_z > TIER else "repeat"
    spend = "high" if monetary_z > TIER else "low" if monetary_z < -TIER else "mid"
    return f"{when} {how_often} {spend} spenders"


def _qualifiers(values: list[float], axis: int) -> list[str]:
    """Words telling apart clusters of one base label along `axis` (values: their centroid there)."""
    noun, up, down = _TIER_WORDS[axis]
    rank = np.argsort(np.argsort(-np.asarray(values), kind="stable"), kind="stable")  # 0 = highest
    n = len(values)
    words = []
    for r in rank:
        if r == 0:
            words.append(up if n == 2 else up.replace("more", "most").replace("less", "least")
                         .replace("higher", "highest"))
        elif r == n - 1:
            words.append(down if n == 2 else down.replace("more", "most").replace("fewer", "fewest")
                         .replace("lower", "lowest"))
        else:
            words.append(f"middle {noun}" + ("" if n == 3 else f" {r}"))
    return words


def _cluster_labels(centroids_scaled: np.ndarray, centroids_original: np.ndarray) -> list[str]:
    """Readable, distinct labels (see RfmClusterer); centroids in value order."""
    bases = [_base_label(scaled, original[1]) for scaled, original in zip(centroids_scaled, centroids_original,
                                                                          strict=True)]
    labels = list(bases)
    for base, count in Counter(bases).items():
        if count == 1:
            continue
        members = [i for i, b in enumerate(bases) if b == base]
        points = centroids_scaled[members]
        axis = int(np.argmax(points.max(axis=0) - points.min(axis=0)))
        for i, word in zip(members, _qualifiers([float(v) for v in points[:, axis]], axis), strict=True):
            labels[i] = f"{base} ({word})"
    # Centroids equal on the deciding axis would share a word: number them, in value order.
    totals = Counter(labels)
    seen: Counter[str] = Counter()
    for i, label in enumerate(labels):
        if totals[label] > 1:
            seen[label] += 1
            labels[i] = f"{label} {seen[label]}"
    return labels
