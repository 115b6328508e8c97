"""Who may use the marketing app, and as what.

Roles: analyst (reads segments, audiences, journeys and runs), marketer (also builds audiences and
journeys), admin (also reads the audit log and contact details). Each role reads the lake as a
governance persona (lakeformation/personas.yaml), so an analyst never sees raw PII.

Two ways to sign in, one interface (`Authenticator.sign_in(name, password) -> User | None`):
- `LocalUsers`: a users file in the lake (`_system/app/users.json`, scrypt password hashes), for
  `rfmlake app` on one machine; `rfmlake app create-user` adds a user.
- `CognitoUsers`: an Amazon Cognito user pool (the AWS deployment): InitiateAuth with the user's
  password (USER_PASSWORD_AUTH on an app client without a secret), the ID token verified against the
  pool's JWKS (issuer, audience, token use, expiry), the role from the user's pool groups.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from rfmlake.errors import ConfigError, RfmlakeError
from rfmlake.lake import Lake

if TYPE_CHECKING:
    import boto3

Role = Literal["analyst", "marketer", "admin"]
ROLES: tuple[Role, ...] = ("analyst", "marketer", "admin")
# The governance persona each role reads the lake as (lakeformation/personas.yaml).
ROLE_PERSONAS: dict[str, str] = {"analyst": "analyst", "marketer": "marketing_service", "admin": "data_engineer"}
# What each role may change; everyone signed in may read every page but the audit log.
PERMISSIONS: dict[str, frozenset[str]] = {
    "analyst": frozenset(),
    "marketer": frozenset({"edit_audiences", "edit_journeys"}),
    "admin": frozenset({"edit_audiences", "edit_journeys", "read_audit"}),
}
USER_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
MIN_PASSWORD = 10


class AuthError(RfmlakeError):
    """A user cannot be created or the sign-in service is misconfigured."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def persona(self) -> str:
        return ROLE_PERSONAS[self.role]

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


class Authenticator(Protocol):
    def sign_in(self, name: str, password: str) -> User | None: ...


# ------------------------------------------------------------------------------------ local users
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r),
                                  p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


class LocalUsers:
    """Users of a local app, in `<lake>/_system/app/users.json` (hashes only; the file is 0600)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake

    @property
    def path(self):  # noqa: ANN201 - a Path
        return self.lake.system_dir / "app" / "users.json"

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text())
            return {u["name"]: u for u in data["users"]}
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"the app's users file {self.path} is not valid; fix or delete it") from None

    def names(self) -> list[str]:
        return sorted(self._load())

    def role_of(self, name: str) -> str | None:
        """The role of an existing user, else None."""
        found = self._load().get(name)
        return None if found is None else found.get("role")

    def add(self, name: str, role: str, password: str, *, replace: bool = False) -> User:
        if not USER_NAME.match(name):
            raise AuthError(f"user name {name!r} must be 1-128 letters, digits or _ . @ + -")
        if role not in ROLES:
            raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
        users = self._load()
        if name in users and not replace:
            raise AuthError(f"a user {name!r} exists already (pass --replace to set a new password or role)")
        users[name] = {"name": name, "role": role, "password": hash_password(password)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        tmp.write_text(json.dumps({"users": [users[n] for n in sorted(users)]}, indent=2) + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        return User(name, role)  # type: ignore[arg-type]

    def sign_in(self, name: str, password: str) -> User | None:
        found = self._load().get(name)
        if found is None:
            verify_password(password, hash_password("x" * MIN_PASSWORD))  # the same time for unknown names
            return None
        if not verify_password(password, found["password"]) or found.get("role") not in ROLES:
            return None
        return User(name, found["role"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- Cognito
def role_from_groups(groups: list[str]) -> Role | None:
    """The highest role among the user's pool groups (admin > marketer > analyst), if any."""
    for role in reversed(ROLES):
        if role in groups:
            return role
    return None


class CognitoUsers:
    """Sign-in against a Cognito user pool; the role is the user's highest group."""

    def __init__(self, user_pool_id: str, client_id: str, *, region: str | None = None,
                 boto3_session: boto3.Session | None = None, endpoint_url: str | None = None,
                 jwks_ttl_seconds: float = 3600.0) -> None:
        if "_" not in user_pool_id:
            raise ConfigError(f"Cognito user pool id {user_pool_id!r} should look like eu-west-1_AbCdEf123")
        self.user_pool_id = user_pool_id
        self.client_id = client_id
        self.region = region or user_pool_id.split("_", 1)[0]
        self.boto3_session = boto3_session
        self.endpoint_url = endpoint_url
        self.issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{user_pool_id}"
        self._jwks: tuple[float, Any] | None = None
        self._ttl = jwks_ttl_seconds

    def _client(self):  # noqa: ANN202 - a boto3 client
        import boto3

        session = self.boto3_session or boto3.Session()
        return session.client("cognito-idp", region_name=self.region, endpoint_url=self.endpoint_url)

    def _jwks_url(self) -> str:
        base = self.endpoint_url.rstrip("/") + f"/{self.user_pool_id}" if self.endpoint_url else self.issuer
        return f"{base}/.well-known/jwks.json"

    def _key_set(self):  # noqa: ANN202 - a joserfc KeySet
        from joserfc.jwk import KeySet

        if self._jwks is None or time.monotonic() - self._jwks[0] > self._ttl:
            import httpx

            response = httpx.get(self._jwks_url(), timeout=10)
            response.raise_for_status()
            self._jwks = (time.monotonic(), KeySet.import_key_set(response.json()))
        return self._jwks[1]

    def verify(self, id_token: str) -> dict[str, Any] | None:
        """The ID token's claims if it is valid for this pool and client, else None."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        try:
            token = jwt.decode(id_token, self._key_set(), algorithms=["RS256"])
            registry = jwt.JWTClaimsRegistry(iss={"essential": True, "value": self.issuer},
                                             aud={"essential": True, "value": self.client_id},
                                             token_use={"essential": True, "value": "id"},
                                             exp={"essential": True})
            registry.validate(token.claims)
        except (JoseError, ValueError):
            return None
        return dict(token.claims)

    def sign_in(self, name: str, password: str) -> User | None:
        from botocore.exceptions import ClientError

        try:
            response = self._client().initiate_auth(
                AuthFlow="USER_PASSWORD_AUTH", ClientId=self.client_id,
                AuthParameters={"USERNAME": name, "PASSWORD": password})
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NotAuthorizedException", "UserNotFoundException", "UserNotConfirmedException",
                        "PasswordResetRequiredException"):
                return None
            raise AuthError(f"Cognito sign-in failed: {code}") from None
        if "AuthenticationResult" not in response:
            # NEW_PASSWORD_REQUIRED and other challenges: the admin sets a permanent password
            # (aws cognito-idp admin-set-user-password --permanent); docs/app.md.
            return None
        claims = self.verify(response["AuthenticationResult"]["IdToken"])
        if claims is None:
            return None
        role = role_from_groups(list(claims.get("cognito:groups") or []))
        if role is None:
            return None
        return User(str(claims.get("cognito:username") or name), role)
