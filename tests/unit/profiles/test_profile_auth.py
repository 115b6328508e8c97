"""API keys (hashed at rest, scopes, env form) and the per-key token bucket."""

from __future__ import annotations

import json

import pytest

from rfmlake.errors import ConfigError
from rfmlake.profiles.auth import ApiKeyRing, TokenBucket, create_key, hash_key


def test_created_keys_are_stored_hashed_and_authenticate(tmp_path):
    path = tmp_path / "keys.json"
    key = create_key(path, "shop", ("profiles",))
    stored = path.read_text()
    assert key not in stored and hash_key(key) in stored
    assert path.stat().st_mode & 0o777 == 0o600
    ring = ApiKeyRing.load(path)
    assert ring.authenticate(key).name == "shop" and ring.authenticate(key).scopes == ("profiles",)
    assert ring.authenticate(key + "x") is None
    with pytest.raises(ConfigError, match="exists already"):
        create_key(path, "shop")
    with pytest.raises(ConfigError, match="unknown scopes"):
        create_key(path, "other", ("admin",))


def test_keys_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RFMLAKE_API_KEYS", "support:s3cret:profiles, shop:k2")
    ring = ApiKeyRing.load(tmp_path / "absent.json")
    assert len(ring) == 2 and ring.authenticate("k2").scopes == ("profiles", "email")
    monkeypatch.setenv("RFMLAKE_API_KEYS", "broken")
    with pytest.raises(ConfigError, match="entry 1 must look like"):
        ApiKeyRing.load(tmp_path / "absent.json")


def test_a_corrupt_keys_file_is_a_clear_error(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"keys": [{"name": "x"}]}))
    with pytest.raises(ConfigError, match="not valid"):
        ApiKeyRing.load(path)


def test_token_bucket_refills_at_the_rate_per_key():
    now = [100.0]
    bucket = TokenBucket(rate=2.0, burst=3, clock=lambda: now[0])
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(0.5)
    assert bucket.take("b") == 0.0  # another key has its own bucket
    now[0] += 0.5
    assert bucket.take("a") == 0.0 and bucket.take("a") > 0
    with pytest.raises(ConfigError):
        TokenBucket(rate=0, burst=1)


def test_token_bucket_tracks_a_bounded_number_of_keys():
    now = [0.0]
    failures = TokenBucket(rate=0.1, burst=2, clock=lambda: now[0], max_keys=100)
    for i in range(10_000):  # one guess from each of 10,000 addresses
        failures.take(f"10.0.{i // 256}.{i % 256}")
    assert len(failures) == 100  # memory stays bounded
    assert failures.take("a") == 0.0 and failures.take("a") == 0.0
    assert failures.wait("a") == pytest.approx(10.0) and failures.wait("a") == pytest.approx(10.0)  # wait takes nothing
    assert failures.wait("b") == 0.0 and len(failures) == 100
    now[0] += 10.0
    assert failures.wait("a") == 0.0
    with pytest.raises(ConfigError):
        TokenBucket(rate=1, burst=1, max_keys=0)
