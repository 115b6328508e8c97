"""The statistics of gold.journey_results, checked against scipy's own implementations and against
simulated experiments (vectorised in NumPy, thousands per test): with no effect the test rejects at
its nominal rate, a planted uplift falls inside its interval as often as the confidence says, and
the minimum detectable effect is detected with the stated power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats

from rfmlake.journeys.stats import (
    compare,
    minimum_detectable_effect,
    newcombe_interval,
    probability_better,
    two_proportion_pvalue,
    welch,
    wilson_interval,
)

EXPERIMENTS = 20_000


def test_against_scipy_and_the_literature() -> None:
    for x, n in [(0, 10), (7, 50), (50, 50), (312, 4000)]:
        low, high = wilson_interval(x, n)
        expected = stats.binomtest(x, n).proportion_ci(method="wilson")
        assert (float(low), float(high)) == pytest.approx((expected.low, expected.high), abs=1e-12)
    # the pooled z-test's square is Pearson's chi-square without continuity correction
    for x1, n1, x2, n2 in [(30, 500, 12, 300), (5, 40, 0, 35), (400, 9000, 30, 1000)]:
        table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
        assert float(two_proportion_pvalue(x1, n1, x2, n2)) == pytest.approx(
            stats.chi2_contingency(table, correction=False).pvalue, rel=1e-9)
    # Newcombe (1998), Statistics in Medicine 17:873, table II, example (a): 56/70 vs 48/80
    low, high = newcombe_interval(56, 70, 48, 80)
    assert (round(float(low), 4), round(float(high), 4)) == (0.0524, 0.3339)
    a, b = np.r_[np.full(30, 80.0), np.zeros(170)], np.r_[np.full(10, 75.0), np.zeros(190)]
    diff, low, high, p = welch(a, b)
    reference = stats.ttest_ind(a, b, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert (diff, low, high, p) == pytest.approx((a.mean() - b.mean(), interval.low, interval.high, reference.pvalue))
    # P(rate 1 > rate 2) under uniform priors: Evan Miller's closed form for integer Beta parameters
    for x1, n1, x2, n2 in [(12, 100, 1, 10), (40, 400, 10, 100), (5, 5, 0, 5), (31, 400, 9, 100)]:
        a1, b1, a2, b2 = 1 + x1, 1 + n1 - x1, 1 + x2, 1 + n2 - x2
        exact = sum(np.exp(special.betaln(a2 + i, b2 + b1) - np.log(b1 + i) - special.betaln(1 + i, b1)
                           - special.betaln(a2, b2)) for i in range(a1))
        assert probability_better(x1, n1, x2, n2) == pytest.approx(exact, abs=1e-9)
    # no difference at all and no data are not errors
    assert float(two_proportion_pvalue(0, 100, 0, 10)) == 1.0
    assert np.isnan(two_proportion_pvalue(1, 0, 1, 10))
    assert np.isnan(wilson_interval(0, 0)[0])


def test_with_no_effect_the_false_positive_rate_is_the_nominal_level() -> None:
    rng = np.random.default_rng(20261130)
    for n_treated, n_holdout, rate in [(900, 100, 0.05), (4500, 500, 0.05), (2000, 2000, 0.12), (450, 50, 0.2)]:
        x_t = rng.binomial(n_treated, rate, EXPERIMENTS)
        x_h = rng.binomial(n_holdout, rate, EXPERIMENTS)
        rejected = int((two_proportion_pvalue(x_t, n_treated, x_h, n_holdout) < 0.05).sum())
        # the rejections are binomial(EXPERIMENTS, alpha) if the test holds its level; a discrete test
        # may be a little conservative, never liberal beyond chance
        check = stats.binomtest(rejected, EXPERIMENTS, 0.05)
        assert check.pvalue > 0.001 or rejected < 0.05 * EXPERIMENTS, (n_treated, n_holdout, rate, rejected)
        assert 0.035 * EXPERIMENTS < rejected < 0.0575 * EXPERIMENTS, (n_treated, n_holdout, rate, rejected)


def test_a_planted_uplift_falls_inside_its_interval_at_the_confidence_level() -> None:
    rng = np.random.default_rng(7)
    for n_treated, n_holdout, rate, uplift in [(900, 100, 0.05, 0.03), (4500, 500, 0.10, 0.02), (1000, 1000, 0.2, 0.1)]:
        x_t = rng.binomial(n_treated, rate + uplift, EXPERIMENTS)
        x_h = rng.binomial(n_holdout, rate, EXPERIMENTS)
        low, high = newcombe_interval(x_t, n_treated, x_h, n_holdout)
        covered = int(((low <= uplift) & (uplift <= high)).sum())
        assert stats.binomtest(covered, EXPERIMENTS, 0.95).pvalue > 0.001 or covered > 0.95 * EXPERIMENTS
        assert 0.94 * EXPERIMENTS < covered < 0.965 * EXPERIMENTS, (n_treated, n_holdout, covered)


def test_the_minimum_detectable_effect_is_detected_with_the_stated_power() -> None:
    rng = np.random.default_rng(11)
    for n_treated, n_holdout, rate in [(4500, 500, 0.08), (900, 100, 0.05), (2000, 2000, 0.3)]:
        mde = float(minimum_detectable_effect(n_treated, n_holdout, rate))
        x_t = rng.binomial(n_treated, rate + mde, EXPERIMENTS)
        x_h = rng.binomial(n_holdout, rate, EXPERIMENTS)
        power = float((two_proportion_pvalue(x_t, n_treated, x_h, n_holdout) < 0.05).mean())
        assert 0.77 < power < 0.83, (n_treated, n_holdout, rate, mde, power)
    # smaller groups need a larger effect; a base rate near 1 leaves no room for one
    assert minimum_detectable_effect(225, 25, 0.08) > 2 * minimum_detectable_effect(900, 100, 0.08)
    assert np.isnan(minimum_detectable_effect(20, 5, 0.9))


def test_a_comparison_says_when_the_groups_are_too_small() -> None:
    treated = np.r_[np.ones(12, bool), np.zeros(88, bool)]
    holdout = np.r_[np.ones(1, bool), np.zeros(9, bool)]
    result = compare(treated * 40.0, treated, holdout * 40.0, holdout)
    assert result.lift == pytest.approx(0.02) and not result.significant
    assert result.minimum_detectable_effect is not None and result.minimum_detectable_effect > 0.2
    assert "100 treated and 10 held out can only detect a lift of" in result.note and "too few customers" in result.note
    big = compare(np.zeros(5000), np.r_[np.ones(900, bool), np.zeros(4100, bool)],
                  np.zeros(5000), np.r_[np.ones(700, bool), np.zeros(4300, bool)])
    assert big.significant and big.note.startswith("significant at 95%") and big.probability_better > 0.99
    assert compare(np.zeros(3), np.zeros(3, bool), np.zeros(0), np.zeros(0, bool)).note.startswith("no holdout")
    assert probability_better(0, 10, 10, 10) < 0.001
