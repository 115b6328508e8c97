"""Unified customer profiles: gold.customer_profile, the profile stores (embedded SQLite and
OpenSearch), the indexer and the profile API."""

from rfmlake.profiles.build import PROFILE_TABLE, to_document, write_profile_table
from rfmlake.profiles.embedded import EmbeddedProfileStore
from rfmlake.profiles.indexer import IndexReport, embedded_store, index_profiles, index_version
from rfmlake.profiles.store import (
    InvalidQueryError,
    ProfilePage,
    ProfileQuery,
    ProfileStore,
    ProfileStoreError,
    SegmentCount,
)

__all__ = [
    "PROFILE_TABLE", "EmbeddedProfileStore", "IndexReport", "InvalidQueryError", "ProfilePage", "ProfileQuery",
    "ProfileStore", "ProfileStoreError", "SegmentCount", "embedded_store", "index_profiles",
    "index_version", "to_document", "write_profile_table",
]
