"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo & Jiang 1999): the
expected value of a customer's future orders.

Order values z ~ Gamma(p, nu) per customer, nu ~ Gamma(q, v) across customers. For a customer with
x repeat orders of mean value m, the likelihood of m (up to a constant) is

    ll = lgamma(p x + q) - lgamma(p x) - lgamma(q) + q log(v) + (p x - 1) log(m) + p x log(x)
         - (p x + q) log(x m + v)

Only customers with x > 0 and m > 0 carry information on (p, q, v); everyone gets a prediction:
E[M | x, m] = p (v + x m) / (p x + q - 1), which is the population mean p v / (q - 1) for x = 0 and
finite for m = 0 (zero-value orders). A finite population mean needs q > 1.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
from scipy.special import gammaln

from rfmlake.value.fitting import FitError, FitResult, fit_log_params

PARAM_NAMES: tuple[str, ...] = ("p", "q", "v")


def gamma_gamma_log_likelihood(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    return _Terms(x, m).log_likelihood(params)


class _Terms:
    """The Gamma-Gamma log-likelihood of fixed data, factored for repeated evaluation: the gammaln
    terms depend on x alone (evaluated over its distinct values and gathered), log m and log x are
    computed once. Same values as evaluating the formula per row."""

    def __init__(self, x: np.ndarray, m: np.ndarray) -> None:
        self.x = x
        self.ux, self.ix = np.unique(x, return_inverse=True)
        self.log_m = np.log(m)
        self.log_x = np.log(x)
        self.xm = x * m

    def log_likelihood(self, params: np.ndarray) -> np.ndarray:
        p, q, v = (float(val) for val in params)
        pux = p * self.ux
        per_x = gammaln(pux + q) - gammaln(pux) - gammaln(q) + q * np.log(v)
        px = p * self.x
        return (per_x[self.ix] + (px - 1.0) * self.log_m + px * self.log_x
                - (px + q) * np.log(self.xm + v))


class GammaGammaModel:
    """Gamma-Gamma fitted by maximum likelihood on the customers with x > 0 and a positive mean."""

    def __init__(self, starts: tuple[tuple[float, float, float], ...] | None = None) -> None:
        self.starts = starts

    def fit(self, x: np.ndarray, m: np.ndarray) -> Self:
        x, m = np.asarray(x, dtype="float64"), np.asarray(m, dtype="float64")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(m))):
            raise ValueError("Gamma-Gamma inputs have missing or non-finite values")
        usable = (x > 0) & (m > 0)
        if int(usable.sum()) < 2:
            raise FitError(f"Gamma-Gamma needs customers with repeat orders of positive value; "
                           f"{int(usable.sum())} of {len(x)} have one")
        x, m = x[usable], m[usable]
        if np.allclose(m, m[0], rtol=1e-9):
            raise FitError("every repeat customer has the same mean order value; Gamma-Gamma cannot "
                           "estimate a spread across customers")

        terms = _Terms(x, m)

        def negative_ll(log_params: np.ndarray) -> float:
            return -float(np.sum(terms.log_likelihood(np.exp(log_params))))

        mean = float(np.mean(m))
        starts = self.starts or ((1.0, 2.0, mean), (5.0, 5.0, mean), (2.0, 10.0, 5.0 * mean), (0.5, 1.5, mean / 2.0))
        result: FitResult = fit_log_params(negative_ll, starts, PARAM_NAMES, n_obs=float(len(x)))
        self.params_ = result.params
        self.fit_ = result
        self.n_customers_ = int(len(x))
        if self.params_[1] <= 1.0:
            raise FitError(f"Gamma-Gamma fit gives q = {self.params_[1]:.3g} <= 1: the spend distribution "
                           "has no finite mean (a few very large orders dominate); cap or review outliers",
                           self.to_dict())
        return self

    def expected_spend(self, x: np.ndarray, m: np.ndarray) -> np.ndarray:
        """E[value of a future order | x repeat orders of mean m]; m is ignored where x = 0."""
        p, q, v = self._params()
        x = np.asarray(x, dtype="float64")
        m = np.clip(np.nan_to_num(np.asarray(m, dtype="float64"), nan=0.0), 0.0, None)
        m = np.where(x > 0, m, 0.0)
        return p * (v + x * m) / (p * x + q - 1.0)

    def population_mean(self) -> float:
        p, q, v = self._params()
        return p * v / (q - 1.0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: float(v) for name, v in zip(PARAM_NAMES, self._params(), strict=True)}
        if hasattr(self, "fit_"):
            out["fit"] = {
                "log_likelihood": self.fit_.log_likelihood, "customers": self.n_customers_,
                "converged_starts": self.fit_.converged_starts, "starts": self.fit_.starts,
                "at_bound": list(self.fit_.at_bound),
            }
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GammaGammaModel:
        model = cls()
        model.params_ = np.array([float(data[name]) for name in PARAM_NAMES])
        if not np.all(np.isfinite(model.params_)) or np.any(model.params_ <= 0) or model.params_[1] <= 1:
            raise ValueError(f"stored Gamma-Gamma parameters must be positive with q > 1, got {data}")
        return model

    def _params(self) -> tuple[float, float, float]:
        if not hasattr(self, "params_"):
            raise RuntimeError("GammaGammaModel is not fitted; call fit() or from_dict()")
        p, q, v = (float(val) for val in self.params_)
        return p, q, v
