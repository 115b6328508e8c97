"""Lambda: a debounced batch of landing object-created events and scheduled ticks (SQS) -> at most one
state machine execution, only while no run holds the run lease. Thin: rfmlake.pipeline.trigger.
Environment: RFMLAKE_STATE_MACHINE_ARN, RFMLAKE_RUN_LEASE_TABLE."""

from __future__ import annotations

import os
from typing import Any

from rfmlake.pipeline.trigger import start_from_landing


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return start_from_landing(event, os.environ["RFMLAKE_STATE_MACHINE_ARN"], os.environ["RFMLAKE_RUN_LEASE_TABLE"])
