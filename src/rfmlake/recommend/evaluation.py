"""Offline evaluation on a time split: fit on what happened before the split, recommend, and score
against what each customer bought after it (products they had not bought before), beside the
popularity baseline on the same customers. precision@k, recall@k, NDCG@k per customer, their means,
a bootstrap over customers for the difference model - baseline, and catalogue coverage."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from rfmlake.recommend.model import PURCHASE, ItemSimilarityRecommender, PopularityRecommender

METRICS = ("precision", "recall", "ndcg")


def ranking_metrics(recommended: pd.DataFrame, relevant: Mapping[str, set[str]], k: int) -> pd.DataFrame:
    """Per customer of `relevant` (customer_id -> products bought in the test period): precision@k,
    recall@k and NDCG@k (binary relevance) of `recommended` (customer_id, rank, product_id). A
    customer with no recommendation scores 0."""
    top = recommended[recommended["rank"] <= k]
    lists = top.sort_values(["customer_id", "rank"]).groupby("customer_id")["product_id"].agg(list).to_dict()
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    rows = []
    for customer, wanted in relevant.items():
        hits = np.array([item in wanted for item in lists.get(customer, [])[:k]], dtype=bool)
        n_hits = int(hits.sum())
        dcg = float(discounts[: len(hits)][hits].sum())
        ideal = float(discounts[: min(k, len(wanted))].sum())
        rows.append((customer, n_hits / k, n_hits / len(wanted), dcg / ideal if ideal else 0.0))
    return pd.DataFrame(rows, columns=["customer_id", *METRICS]).set_index("customer_id")


def bootstrap_difference(model: np.ndarray, baseline: np.ndarray, samples: int, seed: int,
                         level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of mean(model - baseline) over customers resampled with replacement."""
    diff = np.asarray(model, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    if len(diff) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    for start in range(0, samples, 100):  # 100 resamples at a time bounds memory at 100 x customers
        stop = min(samples, start + 100)
        picks = rng.integers(0, len(diff), size=(stop - start, len(diff)))
        means[start:stop] = diff[picks].mean(axis=1)
    alpha = (1.0 - level) / 2
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


@dataclass(frozen=True)
class TimeSplit:
    split_date: date    # first day of the test period
    end_date: date      # the day after the test period (the run's as_of)

    def train(self, interactions: pd.DataFrame) -> pd.DataFrame:
        return interactions[interactions["occurred_at"] < pd.Timestamp(self.split_date)]

    def test(self, interactions: pd.DataFrame) -> pd.DataFrame:
        at = interactions["occurred_at"]
        return interactions[(at >= pd.Timestamp(self.split_date)) & (at < pd.Timestamp(self.end_date))]


def evaluate_time_split(
    interactions: pd.DataFrame, products: pd.DataFrame, split: TimeSplit,
    make_model: Callable[[], ItemSimilarityRecommender], *, segments_at_split: Mapping[str, str] | None = None,
    k: int = 10, bootstrap_samples: int = 1000, seed: int = 0,
) -> dict[str, Any]:
    """Fit the model and the baseline on interactions before the split; score both on the customers
    who had an interaction before it and bought, in the test period, a product they had not bought
    before. interactions: customer_id, product_id, kind, at (naive UTC timestamp)."""
    train = split.train(interactions)
    test = split.test(interactions)
    test = test[test["kind"] == PURCHASE]
    bought_before = train[train["kind"] == PURCHASE].groupby("customer_id")["product_id"].agg(set).to_dict()
    known = set(train["customer_id"].unique())
    relevant: dict[str, set[str]] = {}
    for customer, items in test.groupby("customer_id")["product_id"]:
        if customer not in known:
            continue
        new = set(items) - bought_before.get(customer, set())
        if new:
            relevant[str(customer)] = new
    report: dict[str, Any] = {
        "split_date": split.split_date.isoformat(), "end_date": split.end_date.isoformat(), "k": k,
        "train_interactions": len(train), "test_purchases": len(test),
        "test_buyers": int(test["customer_id"].nunique()), "customers": len(relevant),
        "cold_test_buyers": int(len(set(test["customer_id"].unique()) - known)),
        "bootstrap_samples": bootstrap_samples, "confidence_level": 0.95,
    }
    if not relevant or train.empty:
        report["skipped"] = ("no customer both had history before the split and bought a new product after it"
                             if train.size else "no interaction before the split")
        return report
    customers = sorted(relevant)
    model = make_model().fit(train, products, segments_at_split)
    baseline = PopularityRecommender(depth=model.depth).fit(train, products)
    scored = {"model": model.recommend(customers, k), "baseline": baseline.recommend(customers, k)}
    per_customer = {name: ranking_metrics(recs, relevant, k).loc[customers] for name, recs in scored.items()}
    catalogue = len(model.catalogue_.ids)
    results: dict[str, Any] = {}
    for metric in METRICS:
        m, b = per_customer["model"][metric].to_numpy(), per_customer["baseline"][metric].to_numpy()
        low, high = bootstrap_difference(m, b, bootstrap_samples, seed)
        results[f"{metric}@{k}"] = {"model": round(float(m.mean()), 6), "baseline": round(float(b.mean()), 6),
                                    "difference": round(float(m.mean() - b.mean()), 6),
                                    "ci_low": round(low, 6), "ci_high": round(high, 6)}
    results["coverage"] = {name: round(recs["product_id"].nunique() / catalogue, 6) if catalogue else 0.0
                           for name, recs in scored.items()}
    report["catalogue_products"] = catalogue
    report["metrics"] = results
    report["model_beats_baseline"] = {metric: results[f"{metric}@{k}"]["ci_low"] > 0 for metric in METRICS}
    report["model_sources"] = {str(k_): int(v) for k_, v in scored["model"]["source"].value_counts().items()}
    return report
