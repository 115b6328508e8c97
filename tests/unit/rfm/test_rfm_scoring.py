"""RfmScorer on hand-computed fixtures: exact edges and scores, ties never split."""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from rfmlake.rfm.scoring import RfmScorer


def frame(recency=None, frequency=None, monetary=None) -> pd.DataFrame:
    size = len(next(v for v in (recency, frequency, monetary) if v is not None))
    return pd.DataFrame({
        "recency_days": recency if recency is not None else [1] * size,
        "frequency": frequency if frequency is not None else [1] * size,
        "monetary": monetary if monetary is not None else [1.0] * size,
    })


def test_ten_distinct_values_give_two_customers_per_bin():
    values = list(range(1, 11))
    scorer = RfmScorer(n_bins=5).fit(frame(recency=values, frequency=values, monetary=[v * 10.0 for v in values]))
    assert scorer.edges_["frequency"] == [2, 4, 6, 8]
    assert scorer.edges_["monetary"] == [20, 40, 60, 80]
    assert scorer.labels_["frequency"] == [1, 2, 3, 4, 5]
    assert scorer.bin_counts_["frequency"] == [2, 2, 2, 2, 2]
    scores = scorer.transform(frame(recency=values, frequency=values, monetary=[v * 10.0 for v in values]))
    assert scores["f_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scores["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_recency_fewer_days_scores_higher():
    values = list(range(1, 11))
    scorer = RfmScorer(n_bins=5).fit(frame(recency=values))
    # Worst to best: 10 and 9 days are the worst bin, so the edges run downward in days.
    assert scorer.edges_["recency_days"] == [9, 7, 5, 3]
    assert scorer.transform(frame(recency=values))["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]


def test_a_tie_across_a_quantile_boundary_is_never_split():
    # Four customers with one order: a rank-based qcut would put two in bin 1 and two in bin 2.
    values = [1, 1, 1, 1, 2, 3, 4, 5, 6, 7]
    scorer = RfmScorer(n_bins=5).fit(frame(frequency=values))
    # Greedy by hand: targets 2 -> cut after 1 (4 customers); 5.5 -> after 2 (tie 5 vs 6, lower);
    # 6.67 -> after 4 (7); 8.5 -> after 5 (tie 8 vs 9, lower).
    assert scorer.edges_["frequency"] == [1, 2, 4, 5]
    assert scorer.bin_counts_["frequency"] == [4, 1, 2, 1, 2]
    assert scorer.transform(frame(frequency=values))["f_score"].tolist() == [1, 1, 1, 1, 2, 3, 3, 4, 5, 5]


def test_identical_values_share_a_score_whatever_the_row_order():
    rng = np.random.RandomState(7)
    values = rng.choice([0.0, 5.0, 5.0, 5.0, 12.5, 40.0, 99.0], size=60)
    data = frame(monetary=values.tolist())
    shuffled = data.sample(frac=1.0, random_state=3)
    first = RfmScorer().fit(data)
    second = RfmScorer().fit(shuffled)
    assert first.to_dict() == second.to_dict()
    scores = second.transform(shuffled)["m_score"]
    per_value = pd.DataFrame({"v": shuffled["monetary"], "s": scores}).groupby("v")["s"].nunique()
    assert (per_value == 1).all()


def test_a_big_tie_in_the_middle_still_uses_every_score():
    values = [1, 2, 3, 3, 3, 3, 3, 3, 4, 5]
    scorer = RfmScorer(n_bins=5).fit(frame(frequency=values))
    assert scorer.transform(frame(frequency=values))["f_score"].tolist() == [1, 2, 3, 3, 3, 3, 3, 3, 4, 5]


def test_fewer_distinct_values_than_bins_are_labelled_by_mid_percentile():
    # Counts 6, 2, 1, 1 of 10: lowest 1, highest 5; the second bin's mid-percentile is 70% (score 4)
    # but must leave room for the third, so 3; the third (85%) gets 4.
    values = [1, 1, 1, 1, 1, 1, 2, 2, 3, 4]
    scorer = RfmScorer(n_bins=5).fit(frame(frequency=values))
    assert scorer.labels_["frequency"] == [1, 3, 4, 5]
    assert scorer.edges_["frequency"] == [1, 2, 3]
    # Three equal-sized bins: the middle one sits at the 50th percentile, score 3.
    assert RfmScorer(n_bins=5).fit(frame(frequency=[1, 2, 3])).labels_["frequency"] == [1, 3, 5]
    assert RfmScorer(n_bins=5).fit(frame(frequency=[10, 20])).labels_["frequency"] == [1, 5]


def test_all_identical_values_and_a_single_customer_score_the_middle():
    same = RfmScorer(n_bins=5).fit(frame(recency=[30] * 8, frequency=[2] * 8, monetary=[10.0] * 8))
    scores = same.transform(frame(recency=[30] * 8, frequency=[2] * 8, monetary=[10.0] * 8))
    assert set(scores.to_numpy().ravel()) == {3}
    single = RfmScorer(n_bins=4).fit(frame(recency=[5], frequency=[1], monetary=[9.99]))
    assert single.transform(frame(recency=[5], frequency=[1], monetary=[9.99])).iloc[0].tolist() == [3, 3, 3]


def test_transform_uses_the_stored_edges_on_new_data():
    values = list(range(1, 11))
    scorer = RfmScorer(n_bins=5).fit(frame(recency=values, frequency=values))
    new = frame(recency=[0, 8, 100, 3], frequency=[0, 2, 2.5, 11])
    scores = scorer.transform(new)
    assert scores["f_score"].tolist() == [1, 1, 2, 5]   # 2.5 lies above the edge 2, below 4
    assert scores["r_score"].tolist() == [5, 2, 1, 4]   # 8 days sits with 7 and 8; 3 with 3 and 4
    assert scorer.edges_["frequency"] == [2, 4, 6, 8]   # transform never refits


def test_round_trip_through_json_scores_identically():
    rng = np.random.RandomState(1)
    data = frame(recency=rng.randint(0, 400, 50).tolist(), frequency=rng.geometric(0.4, 50).tolist(),
                 monetary=np.round(rng.lognormal(4, 1, 50), 2).tolist())
    scorer = RfmScorer(n_bins=5).fit(data)
    restored = RfmScorer.from_dict(json.loads(json.dumps(scorer.to_dict())))
    assert restored.to_dict() == scorer.to_dict()
    pd.testing.assert_frame_equal(restored.transform(data), scorer.transform(data))


def test_decimal_money_is_scored():
    data = frame(monetary=[Decimal("10.00"), Decimal("20.50"), Decimal("20.50"), Decimal("99.99")])
    scores = RfmScorer(n_bins=2).fit(data).transform(data)
    # Target 2 of 4: cutting after 10.00 (1) or after the tie 20.50 (3) is equally near; the lower wins.
    assert scores["m_score"].tolist() == [1, 2, 2, 2]


def test_nan_is_rejected_naming_the_column():
    with pytest.raises(ValueError, match="'monetary'"):
        RfmScorer().fit(frame(monetary=[1.0, float("nan"), 3.0]))
    fitted = RfmScorer().fit(frame(recency=[1, 2, 3]))
    with pytest.raises(ValueError, match="'recency_days'"):
        fitted.transform(frame(recency=[1.0, None, 3.0]))


def test_bad_parameters_and_unfitted_use_are_explained():
    with pytest.raises(ValueError, match="n_bins"):
        RfmScorer(n_bins=1).fit(frame(frequency=[1, 2]))
    with pytest.raises(ValueError, match="empty"):
        RfmScorer().fit(frame(frequency=[]).astype(float))
    with pytest.raises(RuntimeError, match="not fitted"):
        RfmScorer().transform(frame(frequency=[1]))
    with pytest.raises(ValueError, match="'frequency' is missing"):
        RfmScorer().fit(pd.DataFrame({"recency_days": [1], "monetary": [1.0]}))
