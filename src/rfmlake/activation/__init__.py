"""Segment activation: push gold.customer_rfm membership to marketing tools, incrementally,
idempotently and resumably (docs/activation.md)."""

from rfmlake.activation.config import DESTINATION_KINDS, build_destination, destination_from_env
from rfmlake.activation.destinations import Destination, FileDestination, SyncSession
from rfmlake.activation.engine import state_dir, sync
from rfmlake.activation.errors import ActivationError
from rfmlake.activation.model import Change, Member, RecordFailure, SyncReport
from rfmlake.activation.retry import RetryPolicy

__all__ = [
    "DESTINATION_KINDS", "ActivationError", "Change", "Destination", "FileDestination", "Member",
    "RecordFailure", "RetryPolicy", "SyncReport", "SyncSession", "build_destination", "destination_from_env",
    "state_dir", "sync",
]
