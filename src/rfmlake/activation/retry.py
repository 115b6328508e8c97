"""Exponential backoff with full jitter, and the classification of AWS errors into retryable or not.

Sleep and randomness are injected, so tests run instantly and deterministically.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rfmlake.activation.errors import PermanentError, RetryableError

THROTTLING_CODES: frozenset[str] = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "SlowDown",
    "LimitExceededException", "RequestThrottled", "RequestThrottledException",
})
SERVER_CODES: frozenset[str] = frozenset({
    "InternalFailure", "InternalServerError", "InternalServerErrorException", "InternalException",
    "ServiceUnavailable", "ServiceUnavailableException", "InternalError",
})


def is_retryable_code(code: str | None, http_status: int | None = None) -> bool:
    if code in THROTTLING_CODES or code in SERVER_CODES:
        return True
    return http_status is not None and (http_status == 429 or http_status >= 500)


def classify_client_error(exc: Exception) -> RetryableError | PermanentError:
    """A botocore ClientError (or connection error) as the engine's retryable / permanent error."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    error = response.get("Error", {})
    code = error.get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if not response:  # connection reset, read timeout, endpoint unreachable
        return RetryableError(type(exc).__name__)
    reason = f"{code or 'Error'}: {error.get('Message', '')}".strip().rstrip(":")
    return RetryableError(reason) if is_retryable_code(code, status) else PermanentError(reason)


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.1
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=lambda: random.Random(0))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")

    def delay(self, attempt: int) -> float:
        """Full jitter (AWS Architecture Blog): uniform in [0, min(cap, base * 2**attempt)]."""
        return self.rng.uniform(0.0, min(self.max_delay, self.base_delay * (2 ** attempt)))

    def backoff(self, attempt: int) -> None:
        self.sleep(self.delay(attempt))
