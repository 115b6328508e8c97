"""Governance: Lake Formation config as code (model), plan/apply to an account (lakeformation),
local persona enforcement (local), consent (consent) and erasure (erasure)."""

from rfmlake.governance.model import (
    GovernanceConfig,
    GovernanceError,
    load_governance,
    validate_governance,
)

__all__ = ["GovernanceConfig", "GovernanceError", "load_governance", "validate_governance"]
