"""fit_log_params: a start whose likelihood fails numerically is a start that did not converge,
and a fit where every start fails is a FitError with each start's error (issue 21: a numerical
failure of the optimiser used to escape as a ValueError and fail the whole run)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rfmlake.value.fitting import FitError, fit_log_params

# Trials until the first success, geometric with p = 1/3: the maximum-likelihood p is 1 / mean.
TRIALS = np.random.default_rng(5).geometric(1.0 / 3.0, 400)


def geometric_negative_ll(log_params: np.ndarray) -> float:
    """Written with `math`, which raises ValueError (a domain error) where numpy would give nan:
    log(1 - p) for p >= 1, a region the log-parameter bounds do not exclude."""
    p = math.exp(float(log_params[0]))
    return -sum(math.log(p) + (int(k) - 1) * math.log(1.0 - p) for k in TRIALS)


def test_a_start_that_fails_numerically_does_not_stop_the_others() -> None:
    result = fit_log_params(geometric_negative_ll, [(2.0,), (0.2,)], ["p"], n_obs=float(len(TRIALS)))
    assert (result.converged_starts, result.starts) == (1, 2)
    assert result.params[0] == pytest.approx(1.0 / TRIALS.mean(), rel=1e-5)


def test_a_fit_whose_every_start_fails_numerically_is_a_fit_error_naming_why() -> None:
    with pytest.raises(FitError, match=r"no start of 2 converged .*start 1 \(p=2\): ValueError: math domain error") \
            as failed:
        fit_log_params(geometric_negative_ll, [(2.0,), (1.5,)], ["p"], n_obs=float(len(TRIALS)))
    fit = failed.value.diagnostics["fit"]
    assert (fit["converged_starts"], fit["starts"]) == (0, 2)
    assert fit["failures"] == ["start 1 (p=2): ValueError: math domain error",
                               "start 2 (p=1.5): ValueError: math domain error"]


def test_a_programming_error_in_the_likelihood_is_not_taken_for_a_failed_fit() -> None:
    def broken(log_params: np.ndarray) -> float:
        return log_params.no_such_attribute  # type: ignore[attr-defined]

    with pytest.raises(AttributeError):
        fit_log_params(broken, [(1.0,)], ["p"], n_obs=1.0)
