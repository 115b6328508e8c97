"""The statistics of a journey's results: conversion rates with confidence intervals, the lift of a
variant over the holdout with a p-value, revenue per customer, and the smallest lift the groups
could detect. docs/journeys.md explains each choice.

- Conversion rate: Wilson score interval (good coverage for small counts and rates near 0 or 1,
  unlike the Wald interval).
- Lift (treatment rate - holdout rate, in rate points): the two-proportion z-test with the pooled
  rate under the null hypothesis (the p-value; its square is Pearson's chi-square without continuity
  correction), and Newcombe's hybrid score interval for the difference (method 10 of Newcombe 1998),
  built from the two Wilson intervals.
- Revenue per customer: Welch's t-test and interval on the per-customer revenue (non-converters
  count 0), which does not assume equal variances.
- Minimum detectable effect: the smallest increase over the holdout's rate that the two-sided test
  finds with `power` at `alpha`, given the group sizes (solved for the test's own standard errors).
- Bayesian: P(treatment rate > holdout rate) under uniform Beta(1, 1) priors, integrated numerically.

Every function takes NumPy arrays as well as scalars, so a simulation of many experiments is one
call (tests/unit/journeys/test_journey_statistics.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import integrate, optimize, special, stats

ArrayLike = Any


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(successes: ArrayLike, n: ArrayLike, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of x/n; NaN where n = 0."""
    x = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = _z(confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = x / n
        denominator = 1.0 + z * z / n
        center = (p + z * z / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = np.where(n > 0, np.clip(center - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return low, high


def newcombe_interval(x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike,
                      confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Newcombe's hybrid score interval for p1 - p2; NaN where a group is empty."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        p1, p2 = x1 / n1, x2 / n2
        d = p1 - p2
        low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
        high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return low, high


def two_proportion_pvalue(x1: ArrayLike, n1: ArrayLike, x2: ArrayLike, n2: ArrayLike) -> np.ndarray:
    """Two-sided p-value of the pooled two-proportion z-test of p1 = p2. 1.0 when both rates are 0
    or both 1 (no evidence of a difference); NaN where a group is empty."""
    x1, n1, x2, n2 = (np.asarray(v, dtype=float) for v in (x1, n1, x2, n2))
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (x1 + x2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = (x1 / n1 - x2 / n2) / se
        p = 2 * stats.norm.sf(np.abs(z))
    p = np.where(se > 0, p, 1.0)
    return np.where((n1 > 0) & (n2 > 0), p, np.nan)


def minimum_detectable_effect(n1: ArrayLike, n2: ArrayLike, rate: ArrayLike, *, alpha: float = 0.05,
                              power: float = 0.8) -> np.ndarray:
    """The smallest increase d of group 1's rate over a base `rate` (group 2's) that the two-sided
    pooled z-test at `alpha` detects with `power`, for groups of n1 and n2: the root of
    d = z(1 - alpha/2) * sd0(d) + z(power) * sd1(d), with sd0 the test's standard error at the pooled
    rate it would see and sd1 the difference's standard error at rates rate + d and rate. The base
    rate is kept half a customer away from 0 and 1. NaN for an empty group, or when even a rate of
    100% would not be detected."""
    z_alpha, z_power = _z(1 - alpha), float(stats.norm.ppf(power))

    def one(n1: float, n2: float, rate: float) -> float:
        if not (n1 > 0 and n2 > 0) or not np.isfinite(rate):
            return float("nan")
        floor = 0.5 / (n1 + n2)
        p = min(max(rate, floor), 1 - floor)

        def gap(d: float) -> float:
            p1 = p + d
            pooled = (n1 * p1 + n2 * p) / (n1 + n2)
            sd0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
            sd1 = np.sqrt(p1 * (1 - p1) / n1 + p * (1 - p) / n2)
            return float(d - z_alpha * sd0 - z_power * sd1)

        top = 1 - p
        if gap(top) < 0:
            return float("nan")
        return float(optimize.brentq(gap, 0.0, top, xtol=1e-10))

    return np.vectorize(one, otypes=[float])(n1, n2, rate)


def welch(a: ArrayLike, b: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean(a) - mean(b), interval low, high, two-sided p-value) by Welch's t-test; NaN where a
    group has fewer than two values. Equal means with no variance give p = 1."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return (np.nan, np.nan, np.nan, np.nan)
    diff = float(a.mean() - b.mean())
    if a.size < 2 or b.size < 2:
        return (diff, np.nan, np.nan, np.nan)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = float(np.sqrt(va + vb))
    if se == 0:
        return (diff, diff, diff, 1.0 if diff == 0 else 0.0)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, df))
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    return (diff, diff - t * se, diff + t * se, p)


def probability_better(x1: int, n1: int, x2: int, n2: int) -> float:
    """P(rate 1 > rate 2) with Beta(1 + x, 1 + n - x) posteriors (uniform priors)."""
    if n1 <= 0 or n2 <= 0:
        return float("nan")
    a1, b1, a2, b2 = 1.0 + x1, 1.0 + n1 - x1, 1.0 + x2, 1.0 + n2 - x2
    log_norm = float(special.betaln(a1, b1))

    def integrand(t: float) -> float:
        # Beta(a1, b1) density times the Beta(a2, b2) distribution function, from scipy.special's
        # ufuncs: the same integrand as stats.beta's pdf and cdf, some forty times cheaper per point
        # (gold.journey_results compares every group on every day)
        log_pdf = special.xlogy(a1 - 1.0, t) + special.xlog1py(b1 - 1.0, -t) - log_norm
        return float(np.exp(log_pdf) * special.betainc(a2, b2, t))

    # P(A > B) = integral of f_A(t) F_B(t) dt; the mass sits near the means, so split there.
    points = sorted({a1 / (a1 + b1), a2 / (a2 + b2)})
    value, _ = integrate.quad(integrand, 0.0, 1.0, points=points, limit=200)
    return float(min(max(value, 0.0), 1.0))


@dataclass(frozen=True)
class Comparison:
    """One group against the holdout."""

    entered: int
    conversions: int
    conversion_rate: float
    conversion_rate_low: float
    conversion_rate_high: float
    lift: float | None                 # rate points (0.03 = 3 points)
    lift_low: float | None
    lift_high: float | None
    relative_lift: float | None        # lift / holdout rate
    p_value: float | None
    probability_better: float | None
    revenue_per_customer: float
    revenue_lift: float | None         # per customer, reporting currency
    revenue_lift_low: float | None
    revenue_lift_high: float | None
    revenue_p_value: float | None
    minimum_detectable_effect: float | None
    significant: bool
    note: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _num(value: Any) -> float | None:
    value = float(value)
    return None if not np.isfinite(value) else value


def _rate(value: float) -> str:
    return f"{value * 100:.1f} points"


def compare(revenue: ArrayLike, converted: ArrayLike, holdout_revenue: ArrayLike | None = None,
            holdout_converted: ArrayLike | None = None, *, confidence: float = 0.95,
            power: float = 0.8) -> Comparison:
    """A group's conversion and revenue (one value per customer) against the holdout's; without a
    holdout (the holdout group itself, or a journey without one) only the group's own figures."""
    revenue = np.asarray(revenue, dtype=float)
    converted = np.asarray(converted, dtype=bool)
    n, x = int(converted.size), int(converted.sum())
    low, high = wilson_interval(x, n, confidence)
    rate = x / n if n else float("nan")
    rpc = float(revenue.mean()) if n else float("nan")
    own: dict[str, Any] = {
        "entered": n, "conversions": x, "conversion_rate": _num(rate) if n else None,
        "conversion_rate_low": _num(low), "conversion_rate_high": _num(high),
        "revenue_per_customer": _num(rpc) if n else None,
    }
    empty = dict(lift=None, lift_low=None, lift_high=None, relative_lift=None, p_value=None,
                 probability_better=None, revenue_lift=None, revenue_lift_low=None, revenue_lift_high=None,
                 revenue_p_value=None, minimum_detectable_effect=None, significant=False)
    if holdout_converted is None or holdout_revenue is None:
        return Comparison(**own, **empty, note="")
    h_revenue = np.asarray(holdout_revenue, dtype=float)
    h_converted = np.asarray(holdout_converted, dtype=bool)
    nh, xh = int(h_converted.size), int(h_converted.sum())
    if nh == 0:
        return Comparison(**own, **empty, note="no holdout customers yet: the lift cannot be measured")
    if n == 0:
        return Comparison(**own, **empty, note="no customers in this group yet")
    h_rate = xh / nh
    lift = rate - h_rate
    lift_low, lift_high = newcombe_interval(x, n, xh, nh, confidence)
    p = float(two_proportion_pvalue(x, n, xh, nh))
    mde = float(minimum_detectable_effect(n, nh, h_rate, alpha=1 - confidence, power=power))
    r_diff, r_low, r_high, r_p = welch(revenue, h_revenue, confidence)
    significant = p < 1 - confidence
    if significant:
        note = f"significant at {confidence:.0%} (p = {p:.3g})"
    elif not np.isfinite(mde) or abs(lift) < mde:
        smallest = f"a lift of {_rate(mde)} or more" if np.isfinite(mde) else "no lift at all"
        note = (f"not significant (p = {p:.3g}); {n:,} treated and {nh:,} held out can only detect {smallest} "
                f"({power:.0%} power): too few customers to decide on a smaller effect")
    else:
        note = f"not significant (p = {p:.3g})"
    return Comparison(
        **own, lift=_num(lift), lift_low=_num(lift_low), lift_high=_num(lift_high),
        relative_lift=_num(lift / h_rate) if h_rate > 0 else None, p_value=_num(p),
        probability_better=_num(probability_better(x, n, xh, nh)), revenue_lift=_num(r_diff),
        revenue_lift_low=_num(r_low), revenue_lift_high=_num(r_high), revenue_p_value=_num(r_p),
        minimum_detectable_effect=_num(mde), significant=significant, note=note,
    )
