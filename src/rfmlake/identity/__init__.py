"""Identity resolution: one person across customer records, devices and web logs (docs/identity.md)."""

from rfmlake.identity.job import CHANGES_TABLE, GRAPH_TABLE, MATCHES_TABLE, IdentityReport, resolve_identity

__all__ = ["CHANGES_TABLE", "GRAPH_TABLE", "MATCHES_TABLE", "IdentityReport", "resolve_identity"]
