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


def ranking_metrics(recommended: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    """Per customer of `relevant` (distinct customer_id, product_id pairs: products bought in the test
    period): precision@k, recall@k and NDCG@k (binary relevance) of `recommended` (customer_id, rank,
    product_id), indexed by customer in sorted order. A customer with no recommendation scores 0."""
    customers, owner = np.unique(relevant["customer_id"].to_numpy(dtype=object), return_inverse=True)
    wanted = np.bincount(owner, minlength=len(customers))
    products = pd.Index(pd.unique(relevant["product_id"]))
    relevant_keys = owner.astype(np.int64) * len(products) + products.get_indexer(relevant["product_id"])
    top = recommended[recommended["rank"] <= k].sort_values(["customer_id", "rank"], kind="stable")
    position = top.groupby("customer_id", sort=False).cumcount().to_numpy()  # each list's first k count
    top_owner = pd.Index(customers).get_indexer(top["customer_id"])
    top_product = products.get_indexer(top["product_id"])
    hit = (top_owner >= 0) & (top_product >= 0) & (position < k)
    hit &= np.isin(top_owner.astype(np.int64) * len(products) + top_product, relevant_keys)
    hits = np.zeros((len(customers), k), dtype=bool)
    hits[top_owner[hit], position[hit]] = True
    n_hits = hits.sum(axis=1)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    # DCG summed per distinct hit pattern, as numpy sums one customer's gains (bit for bit)
    patterns, pattern_of = np.unique(hits, axis=0, return_inverse=True)
    dcg = np.array([float(discounts[p].sum()) for p in patterns], dtype=np.float64)[pattern_of.ravel()] \
        if len(customers) else np.zeros(0)
    ideal = np.array([float(discounts[:j].sum()) for j in range(k + 1)])[np.minimum(k, wanted)]
    ndcg = np.divide(dcg, ideal, out=np.zeros(len(customers)), where=ideal > 0)
    return pd.DataFrame({"precision": n_hits / k, "recall": n_hits / np.maximum(wanted, 1), "ndcg": ndcg},
                        index=pd.Index(customers, name="customer_id"))[list(METRICS)]


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
    known = pd.Index(train["customer_id"].unique())
    relevant = _new_purchases(train[train["kind"] == PURCHASE], test[test["customer_id"].isin(known)])
    report: dict[str, Any] = {
        "split_date": split.split_date.isoformat(), "end_date": split.end_date.isoformat(), "k": k,
        "train_interactions": len(train), "test_purchases": len(test),
        "test_buyers": int(test["customer_id"].nunique()), "customers": int(relevant["customer_id"].nunique()),
        "cold_test_buyers": int((~pd.Index(test["customer_id"].unique()).isin(known)).sum()),
        "bootstrap_samples": bootstrap_samples, "confidence_level": 0.95,
    }
    if relevant.empty or train.empty:
        report["skipped"] = ("no customer both had history before the split and bought a new product after it"
                             if train.size else "no interaction before the split")
        return report
    customers = list(np.unique(relevant["customer_id"].to_numpy(dtype=object)))
    model = make_model().fit(train, products, segments_at_split)
    baseline = PopularityRecommender(depth=model.depth).fit(train, products)
    scored = {"model": model.recommend(customers, k), "baseline": baseline.recommend(customers, k)}
    per_customer = {name: ranking_metrics(recs, relevant, k) for name, recs in scored.items()}
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


def _new_purchases(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Distinct (customer_id, product_id) pairs bought `after` that the customer had not bought `before`."""
    pairs = after[["customer_id", "product_id"]].dropna().drop_duplicates()
    both = pd.concat([pairs, before[["customer_id", "product_id"]].dropna()], ignore_index=True)
    customer = pd.factorize(both["customer_id"])[0].astype(np.int64)
    product = pd.factorize(both["product_id"])[0].astype(np.int64)
    key = customer * (int(product.max()) + 1 if len(product) else 1) + product
    seen = np.isin(key[: len(pairs)], key[len(pairs):])
    return pairs[~seen].reset_index(drop=True)
