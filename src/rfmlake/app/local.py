"""The app on one machine (`rfmlake app --lake DIR`): local users (added in the audit log like every
other change), a session key kept in the lake."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI

from rfmlake.app.audit import AuditLog
from rfmlake.app.auth import LocalUsers, User
from rfmlake.app.journeys import journeys_port
from rfmlake.app.web import AppConfig, create_app
from rfmlake.lake import Lake
from rfmlake.settings import Settings


def session_key(lake: Lake) -> str:
    """The key that signs session cookies: made once per lake (0600), so sessions survive a restart."""
    path = lake.system_dir / "app" / "session.key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        tmp.write_text(secrets.token_urlsafe(48))
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    return path.read_text().strip()


CLI_ROLE = "cli"  # the audit log's role for a change made at the machine, outside the app


def operator() -> str:
    """Who runs the command: the account's login name (an operator, not a customer)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        return f"uid {os.getuid()}"


def create_user(lake: Lake, name: str, role: str, password: str, *, replace: bool = False,
                actor: str | None = None) -> User:
    """Add (or with `replace` change) a local user and record it in the audit log: user.create or
    user.replace, with the role (and the role before); never the password."""
    users = LocalUsers(lake)
    before = users.role_of(name)
    user = users.add(name, role, password, replace=replace)
    details = {"role": user.role} if before is None else {"role": user.role, "from_role": before}
    AuditLog(lake).record(actor or operator(), CLI_ROLE, "user.create" if before is None else "user.replace",
                          user.name, details)
    return user


def local_app(lake: Lake, settings: Settings, *, journeys_dir: str | Path | None = None) -> FastAPI:
    return create_app(AppConfig(lake=lake, settings=settings, authenticator=LocalUsers(lake),
                                secret_key=session_key(lake), journeys=journeys_port(lake, settings, journeys_dir)))
