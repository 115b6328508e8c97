"""The marketing app (issue 20; docs/app.md): segments, audiences, journeys and runs in a browser."""

from rfmlake.app.auth import ROLE_PERSONAS, ROLES, CognitoUsers, LocalUsers, User
from rfmlake.app.web import AppConfig, create_app

__all__ = ["ROLES", "ROLE_PERSONAS", "AppConfig", "CognitoUsers", "LocalUsers", "User", "create_app"]
