"""Destinations: one module per marketing tool, all behind the Destination port."""

from rfmlake.activation.destinations.base import Destination, SyncSession
from rfmlake.activation.destinations.file import FileDestination

__all__ = ["Destination", "FileDestination", "SyncSession"]
