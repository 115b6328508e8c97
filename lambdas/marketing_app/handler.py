"""Lambda behind API Gateway (HTTP API): the marketing app (rfmlake.app) through Mangum. Thin: the app
is built on the first invocation (no client at import time) and reused while the environment lives.
Environment: see rfmlake.app.aws."""

from __future__ import annotations

from typing import Any

_handler: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        from mangum import Mangum

        from rfmlake.app.aws import gateway_app

        _handler = Mangum(gateway_app(), lifespan="off")
    return _handler(event, context)
