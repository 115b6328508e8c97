"""BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): how many orders a
customer will place and whether they are still active.

Per customer: x repeat orders (orders after the first), t_x the time of the last of them since the
first order (0 when x = 0), T the time from the first order to the end of observation; all times
in days. Purchase rate lambda ~ Gamma(r, alpha), dropout after each repeat order with probability
p ~ Beta(a, b).

Log-likelihood of one customer (FHL eq. 6) written with betaln and a log-sum-exp so no term
overflows for large x or T:

    ll = lgamma(r + x) - lgamma(r) + r log(alpha)
         + logaddexp( betaln(a, b + x)     - betaln(a, b) - (r + x) log(alpha + T),
                      [x > 0] betaln(a + 1, b + x - 1) - betaln(a, b) - (r + x) log(alpha + t_x) )
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy.special import betaln, expit, gammaln, hyp2f1

from rfmlake.value.fitting import FitError, FitResult, fit_log_params

PARAM_NAMES: tuple[str, ...] = ("r", "alpha", "a", "b")


def _check_inputs(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    for name, values in (("x", x), ("t_x", t_x), ("T", T)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"BG/NBD input {name} has missing or non-finite values")
        if np.any(values < 0):
            raise ValueError(f"BG/NBD input {name} has negative values")
    if np.any(t_x > T):
        raise ValueError("BG/NBD input t_x (last repeat order) is after T (end of observation) for some customer")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("BG/NBD input t_x must be 0 for customers without a repeat order (x = 0)")


def bgnbd_log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Per-customer log-likelihood at params (r, alpha, a, b)."""
    return _Terms(x, t_x, T).log_likelihood(params)


class _Terms:
    """The BG/NBD log-likelihood of fixed data, factored for repeated evaluation by an optimiser:
    the special functions (gammaln, betaln) depend on x alone and the logs on T or t_x alone, so
    each is evaluated over the distinct values (a few dozen x, a few thousand days) and gathered;
    only the sums and the logaddexp run per row. Same values as evaluating the formula per row."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
        self.x = x
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.uT, self.iT = np.unique(T, return_inverse=True)
        self.utx, self.itx = np.unique(t_x, return_inverse=True)
        self.repeat = x > 0
        self.urepeat = self.ux > 0

    def log_likelihood(self, params: np.ndarray) -> np.ndarray:
        r, alpha, a, b = (float(v) for v in params)
        ux, x = self.ux, self.x
        beta_ab = betaln(a, b)
        per_x_base = gammaln(r + ux) - gammaln(r) + r * np.log(alpha)
        per_x_alive = betaln(a, b + ux) - beta_ab
        # b + x - 1 > 0 whenever x > 0; np.where keeps x = 0 values away from betaln(., b - 1).
        per_x_dropped = betaln(a + 1.0, np.where(self.urepeat, b + ux - 1.0, 1.0)) - beta_ab
        rx = r + x
        alive = per_x_alive[self.ix] - rx * np.log(alpha + self.uT)[self.iT]
        dropped = np.where(self.repeat, per_x_dropped[self.ix] - rx * np.log(alpha + self.utx)[self.itx], -np.inf)
        return per_x_base[self.ix] + np.logaddexp(alive, dropped)


class BetaGeoModel:
    """BG/NBD fitted by maximum likelihood (scikit-learn style: fit returns self, state in `*_`).

    `fit` groups identical (x, t_x, T) rows and weights them, so a million customers with daily
    resolution cost one likelihood evaluation over the distinct triples.
    """

    def __init__(self, starts: tuple[tuple[float, float, float, float], ...] | None = None) -> None:
        self.starts = starts

    def fit(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> Self:
        x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
        _check_inputs(x, t_x, T)
        if len(x) == 0:
            raise FitError("no customer to fit BG/NBD on")
        if not np.any(x > 0):
            raise FitError(f"none of the {len(x)} customers has a repeat order; BG/NBD cannot estimate "
                           "a purchase rate or dropout from one-time buyers only")
        triples, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
        terms = _Terms(triples[:, 0], triples[:, 1], triples[:, 2])
        weights = counts.astype("float64")

        def negative_ll(log_params: np.ndarray) -> float:
            # A multiply-and-sum, not np.dot: BLAS threads spin on a busy machine (18x slower here).
            return -float(np.sum(weights * terms.log_likelihood(np.exp(log_params))))

        mean_T = float(np.mean(T)) or 1.0
        rate = max(float(np.sum(x)) / float(np.sum(T) or 1.0), 1e-4)
        starts = self.starts or (
            (1.0, 1.0 / rate, 1.0, 1.0),
            (0.5, 0.5 / rate, 0.5, 2.0),
            (2.0, 2.0 / rate, 2.0, 5.0),
            (1.0, mean_T, 1.0, 10.0),
        )
        result: FitResult = fit_log_params(negative_ll, starts, PARAM_NAMES, n_obs=float(len(x)))
        self.params_ = result.params
        self.fit_ = result
        self.n_customers_ = int(len(x))
        self.n_repeaters_ = int(np.sum(x > 0))
        return self

    # -- predictions ----------------------------------------------------------------------------
    def p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(still active | x, t_x, T); exactly 1 for x = 0 (no dropout before a repeat order)."""
        r, alpha, a, b = self._params()
        x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
        repeat = x > 0
        log_odds_dead = (np.log(a) - np.log(np.where(repeat, b + x - 1.0, 1.0))
                         + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
        return np.where(repeat, expit(-log_odds_dead), 1.0)

    def expected_orders(self, horizon: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        """E[orders in (T, T + horizon] | x, t_x, T] (FHL eq. 10)."""
        r, alpha, a, b = self._params()
        x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))
        if horizon <= 0:
            return np.zeros_like(x)
        if abs(a - 1.0) < 1e-6:
            # The closed form is 0/0 at a = 1 but continuous there: average both sides.
            lower = self._with_a(a - 2e-6).expected_orders(horizon, x, t_x, T)
            upper = self._with_a(a + 2e-6).expected_orders(horizon, x, t_x, T)
            return (lower + upper) / 2.0
        z = horizon / (alpha + T + horizon)
        log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + T + horizon))
        hyper = hyp2f1(r + x, b + x, a + b + x - 1.0, z)
        numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - np.exp(log_ratio) * hyper)
        expected = numerator * self.p_alive(x, t_x, T)
        if not np.all(np.isfinite(expected)):
            bad = int(np.sum(~np.isfinite(expected)))
            raise FitError(f"expected orders are not finite for {bad} customer(s) at parameters {self.to_dict()}")
        return np.maximum(expected, 0.0)

    def expected_orders_new(self, horizon: float) -> float:
        """E[X(t)] for a customer just acquired (FHL eq. 7): the population curve."""
        r, alpha, a, b = self._params()
        z = horizon / (alpha + horizon)
        return float((a + b - 1.0) / (a - 1.0)
                     * (1.0 - (alpha / (alpha + horizon)) ** r * hyp2f1(r, b, a + b - 1.0, z)))

    # -- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        params = self._params()
        out: dict[str, Any] = {name: float(v) for name, v in zip(PARAM_NAMES, params, strict=True)}
        if hasattr(self, "fit_"):
            out["fit"] = {
                "log_likelihood": self.fit_.log_likelihood, "customers": self.n_customers_,
                "repeat_customers": self.n_repeaters_, "converged_starts": self.fit_.converged_starts,
                "starts": self.fit_.starts, "at_bound": list(self.fit_.at_bound),
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BetaGeoModel:
        model = cls()
        model.params_ = np.array([float(data[name]) for name in PARAM_NAMES])
        if not np.all(np.isfinite(model.params_)) or np.any(model.params_ <= 0):
            raise ValueError(f"stored BG/NBD parameters must be positive numbers, got {data}")
        return model

    def _params(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise RuntimeError("BetaGeoModel is not fitted; call fit() or from_dict()")
        r, alpha, a, b = (float(v) for v in self.params_)
        return r, alpha, a, b

    def _with_a(self, a: float) -> BetaGeoModel:
        other = BetaGeoModel()
        other.params_ = np.array([self.params_[0], self.params_[1], a, self.params_[3]])
        return other
