"""API keys (stored as SHA-256 hashes, never in clear) and token-bucket rate limits: requests per key,
failed key attempts per client."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rfmlake.errors import ConfigError

SCOPES: tuple[str, ...] = ("profiles", "email")  # email: may look profiles up by email address
KEYS_ENV = "RFMLAKE_API_KEYS"  # "name:key[:scope+scope],..." for deployments without a keys file


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    name: str
    key_hash: str
    scopes: tuple[str, ...] = SCOPES


class ApiKeyRing:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_hash = {k.key_hash: k for k in keys}

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, presented: str) -> ApiKey | None:
        digest = hash_key(presented)
        for key_hash, key in self._by_hash.items():
            if hmac.compare_digest(key_hash, digest):
                return key
        return None

    @classmethod
    def from_env(cls, value: str) -> ApiKeyRing:
        keys = []
        for position, item in enumerate(filter(None, (p.strip() for p in value.split(","))), start=1):
            parts = item.split(":")
            if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
                raise ConfigError(f"{KEYS_ENV} entry {position} must look like name:key or name:key:scope+scope")
            scopes = tuple(parts[2].split("+")) if len(parts) == 3 else SCOPES
            _check_scopes(scopes, f"{KEYS_ENV} entry {position}")
            keys.append(ApiKey(parts[0], hash_key(parts[1]), scopes))
        return cls(keys)

    @classmethod
    def load(cls, keys_file: Path) -> ApiKeyRing:
        keys: list[ApiKey] = []
        if keys_file.is_file():
            try:
                data = json.loads(keys_file.read_text())
                keys = [ApiKey(d["name"], d["key_hash"], tuple(d["scopes"])) for d in data["keys"]]
            except (ValueError, KeyError, TypeError):
                raise ConfigError(f"API keys file {keys_file} is not valid; fix or delete it") from None
        env = os.environ.get(KEYS_ENV)
        if env:
            keys += ApiKeyRing.from_env(env)._by_hash.values()
        return cls(keys)


def _check_scopes(scopes: tuple[str, ...], where: str) -> None:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ConfigError(f"{where}: unknown scopes {unknown}; scopes are {list(SCOPES)}")


def create_key(keys_file: Path, name: str, scopes: tuple[str, ...] = SCOPES) -> str:
    """Add a new random key to the keys file (hash only) and return the key, shown once."""
    _check_scopes(scopes, "--scope")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"key name {name!r} must be letters, digits, '-' or '_'")
    data = {"keys": []}
    if keys_file.is_file():
        data = json.loads(keys_file.read_text())
    if any(k["name"] == name for k in data["keys"]):
        raise ConfigError(f"an API key named {name!r} exists already in {keys_file}")
    key = "rfk_" + secrets.token_urlsafe(24)
    data["keys"].append({"name": name, "key_hash": hash_key(key), "scopes": list(scopes)})
    keys_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = keys_file.with_name(f".{keys_file.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, keys_file)
    return key


class TokenBucket:
    """Token buckets per key: `rate` tokens per second sustained, bursts up to `burst`.

    At most `max_keys` buckets are kept, the least recently used dropped first (in O(1)): the keys
    of failed API-key attempts are client addresses, which callers choose. A dropped bucket starts
    full again, so a caller with more addresses than `max_keys` gets `burst` more attempts per
    address; never unbounded memory."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic, *,
                 max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigError(f"rate limit must be > 0 per second with burst >= 1, got {rate}/{burst}")
        if max_keys < 1:
            raise ConfigError(f"a rate limiter must track at least one key, got {max_keys}")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._state)

    def _tokens(self, key: str, now: float) -> float:
        tokens, stamp = self._state.get(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - stamp) * self.rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._state[key] = (tokens, now)
        self._state.move_to_end(key)
        while len(self._state) > self.max_keys:
            self._state.popitem(last=False)

    def take(self, key: str) -> float:
        """0.0 when allowed (a token is taken), else the seconds to wait before the next token."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(key, now)
            if tokens >= 1.0:
                self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self.rate

    def wait(self, key: str) -> float:
        """Like `take`, without taking: 0.0 while `key` has a token left."""
        with self._lock:
            tokens = self._tokens(key, self._clock())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate
