"""Errors of the journeys domain."""

from __future__ import annotations

from rfmlake.errors import RfmlakeError


class JourneyError(RfmlakeError):
    """A journey cannot be loaded or advanced (invalid YAML, missing table, a run already advancing)."""
