"""rfmlake.recommend.evaluation: the ranking metrics, the bootstrap interval and the time split."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from rfmlake.recommend.evaluation import TimeSplit, bootstrap_difference, evaluate_time_split, ranking_metrics
from rfmlake.recommend.model import ItemSimilarityRecommender


def recs(rows: dict[str, list[str]]) -> pd.DataFrame:
    return pd.DataFrame([(c, r, p) for c, items in rows.items() for r, p in enumerate(items, start=1)],
                        columns=["customer_id", "rank", "product_id"])


def wanted(rows: dict[str, set[str]]) -> pd.DataFrame:
    return pd.DataFrame([(c, p) for c, items in rows.items() for p in sorted(items)],
                        columns=["customer_id", "product_id"])


def test_precision_recall_and_ndcg_by_hand() -> None:
    got = ranking_metrics(recs({"a": ["x", "y", "z"], "b": ["p", "q", "r"]}),
                          wanted({"a": {"y", "w"}, "b": {"q"}, "c": {"x"}}), k=3)
    ideal_two = 1 + 1 / math.log2(3)
    assert got.loc["a"].tolist() == pytest.approx([1 / 3, 1 / 2, (1 / math.log2(3)) / ideal_two])
    assert got.loc["b"].tolist() == pytest.approx([1 / 3, 1.0, 1 / math.log2(3)])
    assert got.loc["c"].tolist() == [0.0, 0.0, 0.0]   # no recommendation: scores 0


def test_ranks_beyond_k_do_not_count() -> None:
    got = ranking_metrics(recs({"a": ["x", "y", "z"]}), wanted({"a": {"z"}}), k=2)
    assert got.loc["a"].tolist() == [0.0, 0.0, 0.0]


def test_bootstrap_interval_brackets_the_mean_difference_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    model, baseline = rng.random(400) + 0.1, rng.random(400)
    low, high = bootstrap_difference(model, baseline, 1000, seed=5)
    assert low < (model - baseline).mean() < high
    assert low > 0.0  # a true difference of 0.1 on 400 customers is found
    assert (low, high) == bootstrap_difference(model, baseline, 1000, seed=5)
    assert bootstrap_difference(np.ones(50), np.zeros(50), 200, seed=0) == (1.0, 1.0)


def test_time_split_trains_before_and_tests_new_purchases_after() -> None:
    at = pd.Timestamp
    frame = pd.DataFrame([
        ("c1", "A", "purchase", at("2024-01-10")), ("c2", "A", "purchase", at("2024-01-11")),
        ("c2", "B", "purchase", at("2024-01-12")), ("c1", "B", "purchase", at("2024-03-01")),
        ("c1", "A", "purchase", at("2024-03-02")),   # bought before: not something to predict
        ("c3", "B", "purchase", at("2024-03-03")),   # no history before the split: left out
        ("c1", "C", "purchase", at("2024-04-01")),   # after the end: left out
    ], columns=["customer_id", "product_id", "kind", "occurred_at"])
    products = pd.DataFrame({"product_id": ["A", "B", "C"], "category": ["k", "k", "k"], "brand": ["b", "b", "b"]})
    report = evaluate_time_split(frame, products, TimeSplit(date(2024, 2, 1), date(2024, 4, 1)),
                                 ItemSimilarityRecommender, k=2, bootstrap_samples=100)
    assert (report["customers"], report["cold_test_buyers"], report["test_purchases"]) == (1, 1, 3)
    assert report["metrics"]["recall@2"]["model"] == 1.0   # c2 bought A and B; c1 has A: B is next
    assert report["metrics"]["coverage"]["model"] == pytest.approx(1 / 3)


def test_no_customer_to_score_is_said_plainly() -> None:
    frame = pd.DataFrame([("c1", "A", "purchase", pd.Timestamp("2024-03-01"))],
                         columns=["customer_id", "product_id", "kind", "occurred_at"])
    report = evaluate_time_split(frame, pd.DataFrame({"product_id": [], "category": [], "brand": []}),
                                 TimeSplit(date(2024, 2, 1), date(2024, 4, 1)), ItemSimilarityRecommender)
    assert "metrics" not in report and report["skipped"]
