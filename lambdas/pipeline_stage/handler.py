"""Lambda: run one python pipeline stage (quality, profiles, activation) for the state machine.
Thin: the payload names the stage; rfmlake.pipeline.remote runs the same function `rfmlake run` does.
The state machine also calls it to write each run's summary (payload {"step": "summarize_run", ...})."""

from __future__ import annotations

from typing import Any

from rfmlake.pipeline.remote import handle_event


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle_event(event)
