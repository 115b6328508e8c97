"""BG/NBD and Gamma-Gamma: the likelihood against brute-force integration, parameter recovery by
simulation, a calibration-vs-holdout check, and numerical robustness at the edges."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from rfmlake.value.bgnbd import BetaGeoModel, bgnbd_log_likelihood
from rfmlake.value.calibration import holdout_check
from rfmlake.value.fitting import FitError
from rfmlake.value.gamma_gamma import GammaGammaModel, gamma_gamma_log_likelihood
from rfmlake.value.simulate import simulate_bgnbd_orders, summarize_orders

TRUE_BG = {"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    lengths = np.random.default_rng(1).uniform(60, 720, 20_000)
    orders = simulate_bgnbd_orders(20_000, *TRUE_BG.values(), lengths, seed=7, **TRUE_GG)
    return summarize_orders(orders)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0, 0.0, 30.0), (1, 10.0, 50.0), (4, 80.0, 100.0), (0, 0.0, 0.0)])
def test_bgnbd_log_likelihood_matches_numerical_integration(x: int, t_x: float, T: float) -> None:
    r, alpha, a, b = 1.3, 20.0, 0.7, 2.5

    log_norm = r * math.log(alpha) - math.lgamma(r) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))

    def individual(lam: float, p: float) -> float:
        # FHL eq. 3 times the Gamma(r, alpha) and Beta(a, b) densities, written out (fast to call).
        like = (1 - p) ** x * lam ** x * math.exp(-lam * T)
        if x > 0:
            like += p * (1 - p) ** (x - 1) * lam ** x * math.exp(-lam * t_x)
        density = lam ** (r - 1) * math.exp(-alpha * lam) * p ** (a - 1) * (1 - p) ** (b - 1)
        return like * density * math.exp(log_norm)

    expected, _ = integrate.dblquad(individual, 0, 1, 0, 3, epsabs=1e-12, epsrel=1e-8)
    got = bgnbd_log_likelihood(np.array([r, alpha, a, b]), np.array([float(x)]), np.array([t_x]), np.array([T]))
    assert got[0] == pytest.approx(np.log(expected), abs=1e-5)


def test_gamma_gamma_log_likelihood_matches_numerical_integration() -> None:
    p, q, v = 3.0, 4.0, 20.0
    x, m = 3, 7.5
    # The density of the mean of x Gamma(p, nu) values is Gamma(p x, x nu); integrate nu out.
    integrand = lambda nu: stats.gamma.pdf(m, p * x, scale=1 / (x * nu)) * stats.gamma.pdf(nu, q, scale=1 / v)  # noqa: E731
    expected, _ = integrate.quad(integrand, 0, np.inf, epsabs=1e-14)
    got = gamma_gamma_log_likelihood(np.array([p, q, v]), np.array([float(x)]), np.array([m]))
    assert got[0] == pytest.approx(np.log(expected), abs=1e-6)


def test_bgnbd_recovers_simulated_parameters(simulated: pd.DataFrame) -> None:
    model = BetaGeoModel().fit(simulated["x"], simulated["t_x"], simulated["T"])
    fitted = model.to_dict()
    for name, true in TRUE_BG.items():
        assert fitted[name] == pytest.approx(true, rel=0.06), name
    assert fitted["fit"]["converged_starts"] >= 2
    assert fitted["fit"]["at_bound"] == []


def test_gamma_gamma_recovers_simulated_parameters(simulated: pd.DataFrame) -> None:
    model = GammaGammaModel().fit(simulated["x"], simulated["repeat_mean"].fillna(0.0))
    fitted = model.to_dict()
    for name, true in TRUE_GG.items():
        assert fitted[name] == pytest.approx(true, rel=0.05), name
    # The population mean order value p v / (q - 1) follows.
    assert model.population_mean() == pytest.approx(6.0 * 15.0 / 3.0, rel=0.05)


def test_holdout_predictions_match_actual_repeat_orders() -> None:
    n = 15_000
    rng = np.random.default_rng(11)
    first_day = rng.uniform(0, 360, n)
    calibration_end, holdout = 540.0, 180.0
    orders = simulate_bgnbd_orders(n, 0.6, 25.0, 2.5, 6.0, calibration_end + holdout - first_day, seed=5)
    orders["day"] = orders["day"] + first_day[orders["customer_id"].to_numpy()]
    check = holdout_check(orders, calibration_end, holdout)

    assert check.customers == n
    assert [b.bucket for b in check.buckets][:3] == ["0", "1", "2"]
    for bucket in check.buckets:
        if bucket.customers >= 300:
            assert abs(bucket.predicted_mean - bucket.actual_mean) <= 0.1 + 0.1 * bucket.actual_mean, bucket
    assert check.predicted_total == pytest.approx(check.actual_total, rel=0.05)
    # Customers who bought more in calibration are expected, and seen, to buy more in the holdout.
    means = [b.actual_mean for b in check.buckets]
    assert means[0] < means[2] < means[-1]


def test_p_alive_and_expected_orders_behave() -> None:
    model = BetaGeoModel.from_dict({"r": 0.8, "alpha": 40.0, "a": 0.9, "b": 3.0})
    x = np.array([0.0, 5.0, 5.0, 20.0])
    t_x = np.array([0.0, 100.0, 300.0, 300.0])
    T = np.array([0.0, 310.0, 310.0, 310.0])
    alive = model.p_alive(x, t_x, T)
    assert alive[0] == 1.0
    assert alive[1] < alive[2]          # same orders, last one long ago: less likely alive
    expected = model.expected_orders(365.0, x, t_x, T)
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert expected[3] > expected[2] > expected[1]
    assert model.expected_orders(30.0, x, t_x, T)[3] < expected[3]
    # A brand-new customer (T = 0) expects the population curve.
    assert expected[0] == pytest.approx(model.expected_orders_new(365.0), rel=1e-9)


def test_expected_orders_continuous_through_a_equal_one() -> None:
    x, t_x, T = np.array([2.0]), np.array([50.0]), np.array([200.0])
    values = [BetaGeoModel.from_dict({"r": 1.0, "alpha": 30.0, "a": a, "b": 2.0}).expected_orders(365, x, t_x, T)[0]
              for a in (1.0 - 1e-3, 1.0, 1.0 + 1e-3)]
    assert np.all(np.isfinite(values))
    assert values[1] == pytest.approx((values[0] + values[2]) / 2, rel=1e-3)


def test_robust_to_one_time_buyers_zero_values_and_first_order_on_as_of() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    x = rng.poisson(1.2, n).astype(float)
    T = rng.uniform(0, 400, n)
    T[:50] = 0.0                                   # first order on the as_of date
    x[:50] = 0.0
    t_x = np.where(x > 0, rng.uniform(0, 1, n) * T, 0.0)
    m = np.where(x > 0, rng.gamma(4.0, 10.0, n), np.nan)
    m[50:80] = 0.0                                  # zero-value repeat orders
    bg = BetaGeoModel().fit(x, t_x, T)
    gg = GammaGammaModel().fit(x, np.nan_to_num(m))
    for values in (bg.p_alive(x, t_x, T), bg.expected_orders(365, x, t_x, T), gg.expected_spend(x, m)):
        assert np.all(np.isfinite(values))
    assert np.all(gg.expected_spend(x, m)[50:80] > 0)  # shrunk toward the population, never 0 or NaN


def test_fit_refuses_data_that_cannot_support_it() -> None:
    with pytest.raises(FitError, match="none of the 3 customers has a repeat order"):
        BetaGeoModel().fit(np.zeros(3), np.zeros(3), np.array([5.0, 6.0, 7.0]))
    with pytest.raises(FitError, match="positive value"):
        GammaGammaModel().fit(np.array([1.0, 0.0]), np.array([0.0, 0.0]))
    with pytest.raises(ValueError, match="t_x .* after T"):
        BetaGeoModel().fit(np.array([1.0]), np.array([9.0]), np.array([5.0]))
