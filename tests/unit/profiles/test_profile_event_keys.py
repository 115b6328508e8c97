"""The indexer's event keys: the lake at the bucket's root (how infra deploys it) or under a prefix."""

from __future__ import annotations

import pytest

from rfmlake.errors import ConfigError
from rfmlake.profiles import aws


def _event(key: str) -> dict:
    return {"detail": {"bucket": {"name": "lake"}, "object": {"key": key}}}


@pytest.mark.parametrize("table", ["gold/customer_profile", "some/prefix/gold/customer_profile"])
def test_version_files_map_to_their_version_at_any_depth(table: str) -> None:
    location = aws.profile_version_from_event(_event(f"{table}/versions/20240401T000000Z-ab/part-00000.parquet"))
    assert location == f"s3://lake/{table}/versions/20240401T000000Z-ab"


@pytest.mark.parametrize("key", ["xgold/customer_profile/_current", "gold/customer_profile_x/_current",
                                 "gold/customer_profiles/versions/v1/part.parquet"])
def test_lookalike_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="not a gold.customer_profile"):
        aws.profile_version_from_event(_event(key))
