"""Customer value: BG/NBD (expected orders, probability alive) and Gamma-Gamma (expected order
value) fitted by maximum likelihood with scipy, and gold.customer_value (docs/customer-value.md)."""

from rfmlake.value.bgnbd import BetaGeoModel
from rfmlake.value.calibration import HoldoutCheck, holdout_check
from rfmlake.value.fitting import FitError
from rfmlake.value.gamma_gamma import GammaGammaModel
from rfmlake.value.model import CustomerValueModel, value_columns, value_inputs

__all__ = [
    "BetaGeoModel",
    "CustomerValueModel",
    "FitError",
    "GammaGammaModel",
    "HoldoutCheck",
    "holdout_check",
    "value_columns",
    "value_inputs",
]
