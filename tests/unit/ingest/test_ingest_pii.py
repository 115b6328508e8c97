"""PII tokens in plain Python, and the lake's local key."""

from __future__ import annotations

import hashlib
import hmac
import stat

import pytest

from rfmlake.ingest.pii import _pads, normalize, resolve_pii_key, tokenize
from rfmlake.lake import Lake
from rfmlake.settings import Settings


@pytest.mark.parametrize(
    "value,kind,expected",
    [
        ("  Alice@Example.COM\t", "email", "alice@example.com"),
        ("+44 (20) 1234-5678", "phone", "+442012345678"),
        ("020 1234 5678", "phone", "02012345678"),
        ("+", "phone", None),
        ("  Élodie ", "name", "élodie"),
        (" 10.0.0.1 ", "ip", "10.0.0.1"),
        ("   ", "email", None),
        (None, "name", None),
    ],
)
def test_normalize(value: str | None, kind: str, expected: str | None) -> None:
    assert normalize(value, kind) == expected


def test_tokenize_is_hmac_sha256_of_the_normalized_value() -> None:
    key = b"secret"
    expected = hmac.new(key, b"alice@example.com", hashlib.sha256).hexdigest()
    assert tokenize(" Alice@Example.com ", key, "email") == expected
    assert tokenize("alice@example.com", b"other", "email") != expected
    assert tokenize("", key, "email") is None


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown PII kind 'ssn'"):
        tokenize("x", b"k", "ssn")


def test_pads_follow_rfc_2104_for_long_keys() -> None:
    long_key = b"k" * 100
    inner, outer = _pads(long_key)
    hashed = hashlib.sha256(long_key).digest().ljust(64, b"\x00")
    assert bytes.fromhex(inner) == bytes(b ^ 0x36 for b in hashed)
    assert bytes.fromhex(outer) == bytes(b ^ 0x5C for b in hashed)


def test_key_from_environment(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RFMLAKE_PII_KEY", "from-env")
    assert resolve_pii_key(lake, Settings()) == b"from-env"
    assert not (lake.system_dir / "pii.key").exists()


def test_local_key_is_created_once_with_owner_only_permissions(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RFMLAKE_PII_KEY", raising=False)
    first = resolve_pii_key(lake, Settings())
    path = lake.system_dir / "pii.key"
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_pii_key(lake, Settings()) == first
    assert first.hex() not in repr(lake.root)  # sanity: the key is not derived from the path


def test_broken_key_file_is_a_clear_error(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from rfmlake.errors import ConfigError

    monkeypatch.delenv("RFMLAKE_PII_KEY", raising=False)
    lake.system_dir.mkdir(parents=True)
    (lake.system_dir / "pii.key").write_text("not hex")
    with pytest.raises(ConfigError, match="pii.key is unreadable or not hex"):
        resolve_pii_key(lake, Settings())


def test_a_different_key_for_an_existing_lake_is_refused(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    from rfmlake.errors import ConfigError

    monkeypatch.setenv("RFMLAKE_PII_KEY", "first-key")
    resolve_pii_key(lake, Settings())
    monkeypatch.setenv("RFMLAKE_PII_KEY", "second-key")
    with pytest.raises(ConfigError, match="differs from the one the lake .* was built with"):
        resolve_pii_key(lake, Settings())
    monkeypatch.setenv("RFMLAKE_PII_KEY", "first-key")
    assert resolve_pii_key(lake, Settings()) == b"first-key"
    assert "first-key" not in (lake.system_dir / "pii_key.fingerprint").read_text()
