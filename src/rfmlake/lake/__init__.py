"""The lake: zones, versioned tables with atomic commits, and the local catalog."""

from rfmlake.lake.tables import ZONES, Lake, TableRef, open_lake

__all__ = ["ZONES", "Lake", "TableRef", "open_lake"]
