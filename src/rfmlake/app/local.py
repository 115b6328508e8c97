"""The app on one machine (`rfmlake app --lake DIR`): local users, a session key kept in the lake."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from fastapi import FastAPI

from rfmlake.app.auth import LocalUsers
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


def local_app(lake: Lake, settings: Settings, *, journeys_dir: str | Path | None = None) -> FastAPI:
    return create_app(AppConfig(lake=lake, settings=settings, authenticator=LocalUsers(lake),
                                secret_key=session_key(lake), journeys=journeys_port(lake, settings, journeys_dir)))
