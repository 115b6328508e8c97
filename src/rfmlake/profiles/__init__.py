"""Unified customer profiles: gold.customer_profile, the profile stores (embedded SQLite and
OpenSearch), the indexer and the profile API."""

from rfmlake.profiles.build import PROFILE_TABLE, build_profile_table, to_document, write_profile_table
from rfmlake.profiles.embedded import EmbeddedProfileStore
from rfmlake.profiles.indexer import IndexReport, embedded_store, index_parquet, index_profiles, index_table
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
    "ProfileStore", "ProfileStoreError", "SegmentCount", "build_profile_table", "embedded_store", "index_parquet",
    "index_profiles", "index_table", "to_document", "write_profile_table",
]
