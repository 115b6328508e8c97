"""Maximum-likelihood fitting shared by the BG/NBD and Gamma-Gamma models.

Parameters are optimised as logs (every parameter is positive, and the likelihood surface is far
better conditioned in log space), from several deterministic starting points; the best converged
optimum wins. A fit that converges nowhere, or ends on the search bounds, is reported, never
silently used. A start whose evaluation fails numerically (an overflow, a domain error, a value
the optimiser refuses) counts as a start that did not converge, with the error kept for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

# exp(+-15) spans 3e-7 .. 3e6: wide enough for any real shop (in days and currency units) while
# keeping gammaln/betaln far from overflow. A parameter at this bound means the data cannot pin it.
LOG_BOUND = 15.0
# What a numerical failure inside the optimiser raises: an overflow or a domain error
# (ArithmeticError: FloatingPointError, OverflowError, ZeroDivisionError), a value scipy or the
# likelihood refuses, a singular matrix (ValueError; numpy's LinAlgError is one). The start that
# raised did not converge; other errors (TypeError, AttributeError, ...) are bugs and propagate.
NUMERIC_ERRORS: tuple[type[Exception], ...] = (ArithmeticError, ValueError)


class FitError(ValueError):
    """The likelihood could not be maximised, or its optimum is unusable (a parameter on the search
    bound, non-finite predictions). `diagnostics` holds what the fit reached, for the report."""

    def __init__(self, message: str, diagnostics: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.diagnostics = diagnostics or {}


@dataclass(frozen=True)
class FitResult:
    params: np.ndarray          # in natural units
    log_likelihood: float       # total, at params
    converged_starts: int
    starts: int
    iterations: int
    at_bound: tuple[str, ...]   # names of parameters that ended on the search bound


def fit_log_params(
    negative_ll: Callable[[np.ndarray], float],
    starts: Sequence[Sequence[float]],
    names: Sequence[str],
    *,
    n_obs: float,
) -> FitResult:
    """Minimise `negative_ll(log_params)` (total negative log-likelihood) from each start (natural
    units). The objective is divided by `n_obs` so tolerances do not depend on the data size."""

    def objective(log_params: np.ndarray) -> float:
        value = negative_ll(log_params) / n_obs
        return float(value) if np.isfinite(value) else 1e300

    best: tuple[float, np.ndarray, int] | None = None
    converged = 0
    failures: list[str] = []
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(names)
    for number, start in enumerate(starts, 1):
        try:
            x0 = np.log(np.asarray(start, dtype="float64"))
            result = minimize(objective, x0, method="L-BFGS-B", bounds=bounds,
                              options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9})
            candidate, success, iterations = result, bool(result.success), int(result.nit)
            if not success:
                # L-BFGS-B sometimes stops on a line-search failure close to the optimum; a
                # Nelder-Mead polish from there settles it without gradients.
                polished = minimize(objective, result.x, method="Nelder-Mead",
                                    options={"maxiter": 1500, "xatol": 1e-7, "fatol": 1e-11})
                candidate = polished if polished.fun <= result.fun else result
                success, iterations = bool(polished.success), iterations + int(polished.nit)
        except NUMERIC_ERRORS as exc:
            failures.append(f"start {number} {_start_text(names, start)}: {type(exc).__name__}: {exc}")
            continue
        if not success or not np.isfinite(candidate.fun) or candidate.fun >= 1e299:
            failures.append(f"start {number} {_start_text(names, start)}: {candidate.message}")
            continue
        converged += 1
        if best is None or candidate.fun < best[0] - 1e-12:
            best = (float(candidate.fun), np.clip(candidate.x, -LOG_BOUND, LOG_BOUND), iterations)
    if best is None:
        raise FitError(f"no start of {len(starts)} converged to a finite likelihood optimum "
                       f"({failures[0] if failures else 'no start given'})",
                       {"fit": {"converged_starts": 0, "starts": len(starts), "failures": failures}})
    value, log_params, iterations = best
    at_bound = tuple(name for name, lp in zip(names, log_params, strict=True)
                     if abs(abs(lp) - LOG_BOUND) < 1e-3)
    return FitResult(params=np.exp(log_params), log_likelihood=-value * n_obs,
                     converged_starts=converged, starts=len(starts), iterations=iterations, at_bound=at_bound)


def _start_text(names: Sequence[str], start: Sequence[float]) -> str:
    return "(" + ", ".join(f"{name}={float(value):.4g}" for name, value in zip(names, start, strict=True)) + ")"
