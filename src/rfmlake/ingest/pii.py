"""PII tokens: HMAC-SHA256 (hex) of a normalized value, keyed by a secret kept out of the lake's data.

The same token comes from plain Python (`tokenize`, for lookups such as erasure requests and tests)
and from SQL (rfmlake.ingest.sql.token, run by DuckDB or Spark, so it scales with the data). Both
normalize the value the same way first, so "Alice@X.com " and "alice@x.com" give one token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from typing import TYPE_CHECKING

from rfmlake.errors import ConfigError
from rfmlake.settings import Settings, pii_key

if TYPE_CHECKING:
    from rfmlake.lake import Lake

KINDS: tuple[str, ...] = ("email", "phone", "name", "ip", "user")
_KEY_FILE = "pii.key"  # local lakes only
_FINGERPRINT_FILE = "pii_key.fingerprint"
# One explicit whitespace set for Python and SQL: str.strip() and SQL's trim() disagree otherwise.
_WHITESPACE = " \t\n\r\f\v"


def resolve_pii_key(lake: Lake, settings: Settings) -> bytes:
    """The secret from the environment variable settings.pii_key_env, else, for a local lake, the
    lake's key file (32 random bytes created once with mode 0600). A lake on S3 never gets a
    generated key: the key comes from the environment (on AWS, from Secrets Manager). The key is
    never logged or written elsewhere.

    A lake remembers a fingerprint of the key it was built with (`_system/pii_key.fingerprint`, on
    either backend): tokens made with another key would silently stop joining (and erasure lookups
    would miss), so a different key is refused."""
    key = _load_key(lake, settings)
    _check_fingerprint(lake, key, settings)
    return key


def _key_source(lake: Lake, settings: Settings) -> str:
    if lake.is_local:
        return f"environment variable {settings.pii_key_env}, or {lake.system_dir / _KEY_FILE}"
    return f"environment variable {settings.pii_key_env}"


def _check_fingerprint(lake: Lake, key: bytes, settings: Settings) -> None:
    fingerprint = hmac.new(key, b"rfmlake pii key fingerprint v1", hashlib.sha256).hexdigest()[:16]
    stored = lake.read_system(_FINGERPRINT_FILE)
    if stored is not None:
        if stored.decode("utf-8", errors="replace").strip() != fingerprint:
            raise ConfigError(
                f"the PII key differs from the one the lake at {lake.location} was built with, so new tokens "
                f"would not match existing ones. Use the original key ({_key_source(lake, settings)}), "
                "or build a new lake."
            )
        return
    lake.write_system((fingerprint + "\n").encode(), _FINGERPRINT_FILE)


def _load_key(lake: Lake, settings: Settings) -> bytes:
    from_env = pii_key(settings)
    if from_env is not None:
        return from_env
    if not lake.is_local:
        # A key generated here would live beside the data it protects, and each run on a fresh
        # worker would make another one.
        raise ConfigError(
            f"no PII key for the lake at {lake.location}: set environment variable {settings.pii_key_env} "
            "to the key, or setting pii_key_secret to the Secrets Manager secret holding it (what the "
            "deployed jobs use); a key file is only generated for a local lake"
        )
    path = lake.system_dir / _KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two runs starting together never overwrite each other's key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    try:
        text = path.read_text().strip()
        key = bytes.fromhex(text)
    except (OSError, ValueError):
        raise ConfigError(f"the PII key file {path} is unreadable or not hex; restore it from backup") from None
    if not key:
        raise ConfigError(f"the PII key file {path} is empty; restore it from backup")
    return key


def normalize(value: str | None, kind: str) -> str | None:
    """The canonical form that is tokenized; None when nothing is left."""
    if kind not in KINDS:
        raise ValueError(f"unknown PII kind {kind!r}; kinds: {KINDS}")
    if value is None:
        return None
    text = value.strip(_WHITESPACE)
    if kind in ("email", "name"):
        text = text.lower()
    elif kind == "phone":
        digits = re.sub(r"[^0-9]", "", text)
        text = ("+" + digits) if text.startswith("+") and digits else digits
    return text or None


def tokenize(value: str | None, key: bytes, kind: str) -> str | None:
    """HMAC-SHA256 hex of the normalized value; None for a missing or blank value."""
    text = normalize(value, kind)
    if text is None:
        return None
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def _pads(key: bytes) -> tuple[str, str]:
    """(K xor ipad, K xor opad) as hex, per RFC 2104 (the SQL twin builds its HMAC from them)."""
    from rfmlake.ingest.sql import hmac_pads

    return hmac_pads(key)
