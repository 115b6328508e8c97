"""Lambda: a new gold.customer_rfm version landed (S3 object-created, delivered by EventBridge) ->
sync the destinations named in the environment. Thin: parse the event, call rfmlake.activation.

Environment: RFMLAKE_LAKE (the lake folder, e.g. an EFS mount), RFMLAKE_ACTIVATION_DESTINATIONS and
the per-destination variables of docs/activation.md. Idempotency is the engine's: a duplicated or
retried event for the same gold version sends nothing twice.
"""

from __future__ import annotations

from typing import Any

from rfmlake.activation.lambda_event import handle_event

try:  # Powertools is optional (the `lambda` extra): structured JSON logs when present.
    from aws_lambda_powertools import Logger

    logger: Any = Logger(service="rfmlake-activate-segments")
    _inject = logger.inject_lambda_context
except ImportError:  # pragma: no cover - exercised where Powertools is absent
    import logging

    logger = logging.getLogger("rfmlake.activate_segments")

    def _inject(fn: Any) -> Any:
        return fn


@_inject
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = handle_event(event)
    logger.info("activation finished", extra={"result": result})
    return result
