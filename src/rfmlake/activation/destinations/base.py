"""The destination port: what the sync engine needs from a marketing tool."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rfmlake.activation.model import Change, Channel, RecordFailure


@dataclass(frozen=True)
class SyncSession:
    """What a destination learns about the sync it takes part in."""

    lake_root: Path
    gold_version: str
    as_of: str
    sync_id: str          # deterministic per (destination, gold version, full): retries reuse it
    segments: tuple[str, ...]
    full: bool


class Destination(ABC):
    """A marketing tool. `send` gets at most `batch_size` changes, each customer at most once, and
    returns the records it could not accept (per-record partial failures). A whole call that fails
    raises RetryableError (throttling, 5xx) or PermanentError; the engine retries and dead-letters.
    Every operation must be idempotent: a batch replayed after a crash must not duplicate anything
    (upserts, subscribe/unsubscribe, files named by batch, events with a deterministic id)."""

    name: str
    channel: Channel
    batch_size: int
    # Whether a batch may be sent again after a crash left its outcome unknown: true for the
    # idempotent operations above. A destination whose sends cannot be taken back or deduplicated
    # (an email, a text message) says False: the journeys engine then sends it one message per
    # batch and never repeats one whose outcome is unknown (docs/journeys.md).
    replay_safe: bool = True
    # Whether it sends journey messages (Change.kind == "message"), not only segment membership.
    sends_messages: bool = False

    def open(self, session: SyncSession) -> None:  # noqa: B027 - optional hook
        """Prepare the tool for a sync (contact list topics, dynamic segments, staging folder)."""

    @abstractmethod
    def send(self, batch: Sequence[Change]) -> list[RecordFailure]:
        """Deliver one batch; return the records that failed."""

    def close(self, session: SyncSession) -> None:  # noqa: B027 - optional hook
        """Called once after every batch was delivered (publish files, ...)."""
