"""RFM scores 1..n that never split ties (DESIGN.md section 5).

Quantile binning with `pd.qcut(rank(method="first"))`, the usual recipe, gives two customers with
the same frequency different scores depending on row order. `RfmScorer` instead fits value edges
between distinct values, so equal values always share a score and new data is scored on the same
scale by looking the value up against the stored edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ScoredFeature:
    """One scored input column: where its score goes and which direction is better."""

    column: str
    score_column: str
    higher_is_better: bool


SCORED_FEATURES: tuple[ScoredFeature, ...] = (
    ScoredFeature("recency_days", "r_score", higher_is_better=False),
    ScoredFeature("frequency", "f_score", higher_is_better=True),
    ScoredFeature("monetary", "m_score", higher_is_better=True),
)


def feature_values(features: pd.DataFrame, column: str) -> np.ndarray:
    """The column as float64, rejecting what cannot be scored with a message naming the column."""
    if column not in features.columns:
        raise ValueError(f"column {column!r} is missing; RFM scoring needs {[f.column for f in SCORED_FEATURES]}")
    try:
        values = pd.to_numeric(features[column].astype("object"), errors="raise").astype("float64").to_numpy()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {column!r} holds non-numeric values: {exc}") from None
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(
            f"column {column!r} has {int(bad.sum())} missing or non-finite value(s) (NaN/inf); "
            "every customer needs a value to be scored"
        )
    return values


def _greedy_cuts(counts: np.ndarray, n_bins: int) -> list[int]:
    """Indices i of distinct values after which a bin ends (bins = runs of distinct values).

    Each step aims at splitting the remaining mass evenly over the remaining bins and takes the
    available boundary whose cumulative count is nearest to that target (the lower one on a tie).
    A boundary is available only if enough distinct values remain for the bins still to fill, so
    with at least n distinct values there are always exactly n bins.
    """
    distinct = len(counts)
    bins = min(n_bins, distinct)
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    cuts: list[int] = []
    start = 0  # index of the first distinct value of the bin being built
    done = 0   # customers in the bins already closed
    for remaining_bins in range(bins, 1, -1):
        target = done + (total - done) / remaining_bins
        last_allowed = distinct - remaining_bins  # leave >= remaining_bins - 1 distinct values after it
        candidates = np.arange(start, last_allowed + 1)
        distance = np.abs(cumulative[candidates] - target)
        cut = int(candidates[int(np.argmin(distance))])  # argmin takes the first (lower) on a tie
        cuts.append(cut)
        done = int(cumulative[cut])
        start = cut + 1
    return cuts


def _bin_labels(bin_counts: list[int], n_bins: int) -> list[int]:
    """Scores for bins ordered worst to best. With n bins: 1..n. With fewer (ties or few distinct
    values): the worst is 1, the best n, the ones between take the score of the quantile their
    mid-percentile falls in, nudged so scores strictly increase. A single bin takes the middle score."""
    k = len(bin_counts)
    if k == n_bins:
        return list(range(1, n_bins + 1))
    if k == 1:
        return [n_bins // 2 + 1]
    total = sum(bin_counts)
    labels = [1]
    below = bin_counts[0]
    for j in range(1, k - 1):
        # Quantile holding the mid-percentile (below + count/2) / total, in exact integer arithmetic
        # so a mid-percentile on a quantile boundary does not land by float rounding.
        wanted = min(n_bins, ((2 * below + bin_counts[j]) * n_bins) // (2 * total) + 1)
        below += bin_counts[j]
        low = labels[-1] + 1
        high = n_bins - (k - 1 - j)  # leave room for the bins above
        labels.append(min(max(wanted, low), high))
    labels.append(n_bins)
    return labels


class RfmScorer:
    """Scores recency, frequency and monetary 1..n_bins, higher is better, ties never split.

    Fitting, per feature (recency on recency_days, where fewer days is better; frequency; monetary):

    1. Order values worst to best (recency descending, the others ascending) and count each
       distinct value.
    2. Cut the run of distinct values into min(n_bins, distinct values) bins, greedily: each cut
       aims at splitting the customers not yet binned evenly over the bins left and is placed at
       the boundary between two distinct values nearest to that target. A cut never falls inside
       a tie, so customers with the same value share a bin; a cut is only allowed where enough
       distinct values remain for the bins left.
    3. Label the bins 1..n worst to best; if there are fewer than n bins (fewer distinct values
       than n), the worst is 1, the best n, and the bins between get the score whose quantile
       holds their mid-percentile, kept strictly increasing. A single bin (every customer has the
       same value, or there is one customer) gets the middle score n // 2 + 1.

    Example, n=5, frequencies [1, 1, 1, 1, 2, 3, 4, 5, 6, 7]: targets 2, 5.5, 6.7, 8.5 customers
    give the bins {1} {2} {3, 4} {5} {6, 7}; all four one-order customers score 1 (a rank-based
    quantile cut would give two of them 1 and two 2).

    Fitted attributes (in original units, so they read plainly in the stored model):
      edges_[column]: the last value of each bin but the best, worst to best. For a higher-is-
        better column a value <= edges[j] (and > edges[j-1]) falls in bin j; for recency a value
        >= edges[j] (and < edges[j-1]). Values beyond the last edge fall in the best bin.
      labels_[column]: the score of each bin, worst to best.
      bin_counts_[column]: customers per bin at fit time (for reports).

    `transform` only looks values up against the stored edges (searchsorted), never refits, so a
    stored scorer scores new data on the fitted scale. Deterministic: the result depends on the
    multiset of values only, never on row order.
    """

    def __init__(self, n_bins: int = 5) -> None:
        self.n_bins = n_bins

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, features: pd.DataFrame) -> Self:
        if not isinstance(self.n_bins, int) or isinstance(self.n_bins, bool) or self.n_bins < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {self.n_bins!r}")
        if len(features) == 0:
            raise ValueError("cannot fit RFM scores on an empty frame: no customer to score")
        edges: dict[str, list[float]] = {}
        labels: dict[str, list[int]] = {}
        bin_counts: dict[str, list[int]] = {}
        for feature in SCORED_FEATURES:
            goodness = self._goodness(feature, feature_values(features, feature.column))
            distinct, counts = np.unique(goodness, return_counts=True)
            cuts = _greedy_cuts(counts, self.n_bins)
            bounds = [0, *(c + 1 for c in cuts), len(distinct)]
            per_bin = [int(counts[a:b].sum()) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
            sign = 1.0 if feature.higher_is_better else -1.0
            edges[feature.column] = [_plain(sign * float(distinct[c])) for c in cuts]
            labels[feature.column] = _bin_labels(per_bin, self.n_bins)
            bin_counts[feature.column] = per_bin
        self.edges_ = edges
        self.labels_ = labels
        self.bin_counts_ = bin_counts
        return self

    # -- scoring --------------------------------------------------------------------------------
    def transform(self, features: pd.DataFrame) -> pd.DataFrame:
        """r_score, f_score, m_score (int8) for each row, on the fitted edges; index kept."""
        self._check_fitted()
        out = pd.DataFrame(index=features.index)
        for feature in SCORED_FEATURES:
            goodness = self._goodness(feature, feature_values(features, feature.column))
            sign = 1.0 if feature.higher_is_better else -1.0
            edges = sign * np.asarray(self.edges_[feature.column], dtype="float64")
            bins = np.searchsorted(edges, goodness, side="left")
            labels = np.asarray(self.labels_[feature.column], dtype="int8")
            out[feature.score_column] = labels[bins]
        return out

    def fit_transform(self, features: pd.DataFrame) -> pd.DataFrame:
        return self.fit(features).transform(features)

    # -- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "n_bins": self.n_bins,
            "edges": {k: list(v) for k, v in self.edges_.items()},
            "labels": {k: list(v) for k, v in self.labels_.items()},
            "bin_counts": {k: list(v) for k, v in self.bin_counts_.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RfmScorer:
        try:
            scorer = cls(n_bins=int(data["n_bins"]))
            scorer.edges_ = {k: [_plain(float(x)) for x in v] for k, v in data["edges"].items()}
            scorer.labels_ = {k: [int(x) for x in v] for k, v in data["labels"].items()}
            scorer.bin_counts_ = {k: [int(x) for x in v] for k, v in data.get("bin_counts", {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"stored RFM scorer is malformed: {exc!r}") from None
        for feature in SCORED_FEATURES:
            edges = scorer.edges_.get(feature.column)
            labels = scorer.labels_.get(feature.column)
            if edges is None or labels is None or len(labels) != len(edges) + 1:
                raise ValueError(f"stored RFM scorer has no consistent edges/labels for {feature.column!r}")
        return scorer

    # -- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _goodness(feature: ScoredFeature, values: np.ndarray) -> np.ndarray:
        return values if feature.higher_is_better else -values

    def _check_fitted(self) -> None:
        if not hasattr(self, "edges_"):
            raise RuntimeError("RfmScorer is not fitted; call fit() or load one with from_dict()")

    def __repr__(self) -> str:
        return f"RfmScorer(n_bins={self.n_bins})"


def _plain(value: float) -> float | int:
    """Whole numbers stored as int so the model JSON reads naturally (edges of day counts)."""
    if value == 0:
        return 0  # avoids -0.0 from negating recency
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)
