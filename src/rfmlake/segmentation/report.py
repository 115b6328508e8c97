"""What a segmentation run tells its reader: which model, why (re)fitted, k, and segment sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class GroupSize:
    name: str
    customers: int
    customer_share: float
    monetary: float
    monetary_share: float | None  # None when total monetary is not positive


@dataclass
class SegmentationReport:
    model_version: str
    refitted: bool
    refit_reason: str            # why fitted, or why the stored model was reused
    as_of_date: str
    customers_scored: int
    k: int
    k_selection: str             # "fixed", "automatic (elbow|silhouette|...)", "limited by data", "skipped"
    selection_curve: list[dict[str, Any]]
    rules_version: int
    segment_sizes: list[GroupSize]
    cluster_sizes: list[GroupSize]
    notes: list[str] = field(default_factory=list)
    # Per cluster in cluster_id order: cluster_id, cluster_label, recency_days, frequency, monetary
    # (the centroid in original units).
    centroids: list[dict[str, Any]] = field(default_factory=list)
    # "r_score"/"f_score"/"m_score" -> customers with score 1, 2, ..., n_bins.
    score_distributions: dict[str, list[int]] = field(default_factory=dict)
    # The automatic k rule's inputs: elbow (the inertia elbow or None), min_cluster_share, min_cluster_size.
    k_rule: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        how = "fitted" if self.refitted else "reused"
        lines = [
            f"segmentation {self.model_version} ({how}: {self.refit_reason}); as_of {self.as_of_date}; "
            f"{self.customers_scored} customers; k={self.k} ({self.k_selection})",
        ]
        for title, sizes in (("rfm_segment", self.segment_sizes), ("cluster_label", self.cluster_sizes)):
            lines.append(f"  {title}:")
            for size in sizes:
                share = "n/a" if size.monetary_share is None else f"{size.monetary_share:.1%}"
                lines.append(f"    {size.name:<32} {size.customers:>8}  {size.customer_share:>6.1%}  "
                             f"monetary share {share}")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def centroid_rows(cluster_ids: list[int], labels: list[str], centroids_original: np.ndarray) -> list[dict[str, Any]]:
    """Centroids in original units (recency_days, frequency, monetary), one dict per cluster."""
    return [
        {"cluster_id": int(cid), "cluster_label": label, "recency_days": round(float(r), 2),
         "frequency": round(float(f), 3), "monetary": round(float(m), 2)}
        for cid, label, (r, f, m) in zip(cluster_ids, labels, centroids_original, strict=True)
    ]


def score_counts(scores: pd.Series, n_bins: int) -> list[int]:
    """Customers per score 1..n_bins (0 for a score nobody got)."""
    values = scores.to_numpy(dtype="int64")
    if len(values) and (values.min() < 1 or values.max() > n_bins):
        raise ValueError(f"scores must be in 1..{n_bins}, got {int(values.min())}..{int(values.max())}")
    return [int(c) for c in np.bincount(values, minlength=n_bins + 1)[1:]]


def group_sizes(names: pd.Series, monetary: pd.Series, order: list[str]) -> list[GroupSize]:
    """Customers and monetary per group in `order` (groups with no customer are listed with 0)."""
    frame = pd.DataFrame({"name": names.to_numpy(), "monetary": monetary.to_numpy(dtype="float64")})
    stats = frame.groupby("name")["monetary"].agg(["size", "sum"])
    total_customers = len(frame)
    total_monetary = float(frame["monetary"].sum())
    sizes = []
    for name in order:
        count = int(stats.at[name, "size"]) if name in stats.index else 0
        money = float(stats.at[name, "sum"]) if name in stats.index else 0.0
        sizes.append(GroupSize(
            name=name,
            customers=count,
            customer_share=count / total_customers if total_customers else 0.0,
            monetary=round(money, 2),
            monetary_share=money / total_monetary if total_monetary > 0 else None,
        ))
    return sizes
