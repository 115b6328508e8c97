"""Lambda behind API Gateway (HTTP API, IAM or JWT authorizer): the profile API through Mangum.
Thin: the app is rfmlake.profiles.app, built on the first invocation (no client at import time)
and reused while the execution environment lives.

Environment: RFMLAKE_OPENSEARCH_ENDPOINT, AWS_REGION, RFMLAKE_PII_KEY_SECRET (the Secrets Manager secret
holding the PII key, read at cold start; or RFMLAKE_PII_KEY, the key itself),
optional RFMLAKE_PROFILES_ALIAS, RFMLAKE_API_RATE, RFMLAKE_API_BURST.
"""

from __future__ import annotations

from typing import Any

_handler: Any = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _handler
    if _handler is None:
        from mangum import Mangum

        from rfmlake.profiles.aws import gateway_app

        _handler = Mangum(gateway_app(), lifespan="off")
    return _handler(event, context)
