"""Sign-in with local users (scrypt hashes in the lake); Cognito: tests/functional/app."""

from __future__ import annotations

import os
import stat

import pytest

from rfmlake.app.auth import AuthError, LocalUsers, User, role_from_groups
from rfmlake.errors import ConfigError


def test_local_users_keep_only_hashes_and_sign_in_with_the_right_password(lake) -> None:  # noqa: ANN001
    users = LocalUsers(lake)
    users.add("mia", "marketer", "correct horse battery")
    text = users.path.read_text()
    assert "correct horse" not in text and "scrypt$" in text
    assert stat.S_IMODE(os.stat(users.path).st_mode) == 0o600
    assert users.sign_in("mia", "correct horse battery") == User("mia", "marketer")
    assert users.sign_in("mia", "correct horse batterY") is None
    assert users.sign_in("nobody", "correct horse battery") is None
    with pytest.raises(AuthError, match="exists already"):
        users.add("mia", "admin", "another long password")
    users.add("mia", "admin", "another long password", replace=True)
    assert users.sign_in("mia", "another long password") == User("mia", "admin")
    assert users.sign_in("mia", "correct horse battery") is None


@pytest.mark.parametrize(("name", "role", "password", "message"), [
    ("mia", "boss", "long enough pw", "role 'boss' is not one of analyst, marketer, admin"),
    ("mia", "analyst", "short", "at least 10 characters"),
    ("mia mia", "analyst", "long enough pw", "must be 1-128 letters"),
])
def test_bad_users_are_refused_with_a_reason(lake, name, role, password, message) -> None:  # noqa: ANN001
    with pytest.raises(AuthError, match=message):
        LocalUsers(lake).add(name, role, password)


def test_a_damaged_users_file_is_a_clear_error(lake) -> None:  # noqa: ANN001
    users = LocalUsers(lake)
    users.path.parent.mkdir(parents=True)
    users.path.write_text("{not json")
    with pytest.raises(ConfigError, match="users file .* is not valid"):
        users.sign_in("mia", "whatever password")


def test_the_highest_group_is_the_role() -> None:
    assert role_from_groups(["analyst", "marketer"]) == "marketer"
    assert role_from_groups(["admin", "analyst"]) == "admin"
    assert role_from_groups(["someone-else"]) is None


def test_the_cli_adds_users_and_refuses_to_serve_without_any(lake, monkeypatch, capsys) -> None:  # noqa: ANN001
    import io

    from rfmlake.cli.main import main

    lake.root.mkdir(parents=True)
    assert main(["app", "--lake", str(lake.root)]) == 1
    assert "has no users yet: rfmlake app create-user" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["app", "create-user", "--lake", str(lake.root), "--name", "ann", "--role", "analyst",
                 "--password-stdin"]) == 0
    assert LocalUsers(lake).sign_in("ann", "a long enough password") == User("ann", "analyst")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["app", "create-user", "--lake", str(lake.root), "--name", "bob", "--role", "admin",
                 "--password-stdin"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err


def test_create_user_writes_the_audit_log_and_never_the_password(lake, monkeypatch, capsys) -> None:  # noqa: ANN001
    import io
    import json

    from rfmlake.app.audit import AuditLog
    from rfmlake.cli.main import main

    lake.root.mkdir(parents=True)
    monkeypatch.setattr("getpass.getuser", lambda: "ops-on-call")
    for role, replace in (("analyst", []), ("admin", ["--replace"])):
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
        assert main(["app", "create-user", "--lake", str(lake.root), "--name", "ann", "--role", role,
                     "--password-stdin", *replace]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["app", "create-user", "--lake", str(lake.root), "--name", "bob", "--role", "admin",
                 "--password-stdin"]) == 1  # refused: no user, no audit entry
    entries = AuditLog(lake).entries()  # newest first
    assert [(e.actor, e.role, e.action, e.target, e.details) for e in entries] == [
        ("ops-on-call", "cli", "user.replace", "ann", {"role": "admin", "from_role": "analyst"}),
        ("ops-on-call", "cli", "user.create", "ann", {"role": "analyst"})]
    for path in (lake.system_dir / "app" / "audit").glob("*.json"):
        text = path.read_text()
        assert "a long enough password" not in text and "scrypt" not in text
        assert set(json.loads(text)["details"]) <= {"role", "from_role"}
