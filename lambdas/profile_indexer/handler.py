"""Lambda: a new gold.customer_profile version was committed (EventBridge S3 'Object Created' for
the table's `_current` pointer) -> index it into OpenSearch under a new index and swap the alias;
only the profiles that changed since the version the active index holds are sent (DuckDB reads and
diffs the versions on S3, in bounded memory). Thin: the work is
rfmlake.profiles.aws.handle_index_event (idempotent per table version).

Environment: RFMLAKE_OPENSEARCH_ENDPOINT, AWS_REGION, optional RFMLAKE_PROFILES_ALIAS.
"""

from __future__ import annotations

import logging
from typing import Any

from rfmlake.profiles.aws import handle_index_event

logger = logging.getLogger("rfmlake.profile_indexer")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = handle_index_event(event)
    logger.info("profile index: generation %s, skipped=%s", result["generation"], result["skipped"])
    return result
