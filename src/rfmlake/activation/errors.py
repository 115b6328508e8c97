"""Errors of the activation domain."""

from __future__ import annotations

from rfmlake.errors import RfmlakeError


class ActivationError(RfmlakeError):
    """Activation cannot run (missing table, bad destination config, a sync already running)."""


class RetryableError(Exception):
    """A whole call failed in a way worth retrying (throttling, 5xx, timeouts)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PermanentError(Exception):
    """A whole call failed for good (bad request, access denied): every record of the call fails."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
