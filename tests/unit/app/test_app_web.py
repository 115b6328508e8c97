"""The marketing app over HTTP (in-process): sign-in, roles, CSRF, the persona's view of a customer,
audiences saved and audited. The browser tests (tests/functional/app) drive the same pages in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from app_lakes import build_app_lake
from rfmlake.app.audit import AuditLog
from rfmlake.app.auth import LocalUsers
from rfmlake.app.journeys import UnavailableJourneys
from rfmlake.app.web import AppConfig, create_app
from rfmlake.audiences import load_audiences
from rfmlake.settings import Settings

PASSWORDS = {"mia": "marketer-pass-1", "ann": "analyst-pass-1", "ada": "admin-pass-123"}


@pytest.fixture()
def lake(tmp_path: Path):
    lake = build_app_lake(tmp_path / "lake")
    users = LocalUsers(lake)
    users.add("mia", "marketer", PASSWORDS["mia"])
    users.add("ann", "analyst", PASSWORDS["ann"])
    users.add("ada", "admin", PASSWORDS["ada"])
    return lake


@pytest.fixture()
def app(lake):  # noqa: ANN001
    return create_app(AppConfig(lake=lake, settings=Settings(), authenticator=LocalUsers(lake),
                                secret_key="test-session-key", journeys=UnavailableJourneys("no journeys here")))


def token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client: TestClient, name: str) -> str:
    csrf = token(client.get("/login").text)
    response = client.post("/login", data={"username": name, "password": PASSWORDS[name], "csrf_token": csrf,
                                           "next": "/segments"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/segments"
    return token(client.get("/audiences/new").text)


def test_every_page_needs_a_signed_in_user(app) -> None:  # noqa: ANN001
    client = TestClient(app)
    for path in ("/segments", "/segments/rfm_segment/Loyal", "/customers/A", "/audiences", "/journeys", "/runs"):
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, f"/login?next={path}")
    assert client.post("/audiences/preview", headers={"HX-Request": "true"}).status_code in (401, 403)


def test_a_wrong_password_or_user_does_not_sign_in(app) -> None:  # noqa: ANN001
    client = TestClient(app)
    csrf = token(client.get("/login").text)
    for name, password in (("mia", "wrong-password"), ("nobody", "marketer-pass-1"), ("mia", "")):
        response = client.post("/login", data={"username": name, "password": password, "csrf_token": csrf})
        assert response.status_code == 401 and "Unknown user name or wrong password" in response.text
    assert client.get("/segments", follow_redirects=False).status_code == 303


def test_posts_without_the_session_csrf_token_are_refused(app, lake) -> None:  # noqa: ANN001
    client = TestClient(app)
    csrf = sign_in(client, "mia")
    form = {"segments": "Loyal", "name": "Loyal buyers"}
    for sent in ({}, {"csrf_token": "forged"}):
        response = client.post("/audiences", data={**form, **sent})
        assert response.status_code == 403 and "security token" in response.text
    assert load_audiences(lake) == []
    other = TestClient(app)  # another browser's token is not this session's
    sign_in(other, "ann")
    assert client.post("/audiences", data={**form, "csrf_token": token(other.get("/audiences/new").text)}
                       ).status_code == 403
    response = client.post("/audiences", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/audiences/loyal_buyers")
    # htmx sends the token as a header
    response = client.post("/audiences/preview", data={"segments": "Loyal"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200


def test_the_login_csrf_token_and_the_next_page_stay_on_this_site(app) -> None:  # noqa: ANN001
    client = TestClient(app)
    assert client.post("/login", data={"username": "mia", "password": PASSWORDS["mia"]}).status_code == 403
    csrf = token(client.get("/login").text)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example/x", "javascript:alert(1)"):
        response = client.post("/login", data={"username": "mia", "password": PASSWORDS["mia"], "csrf_token": csrf,
                                               "next": target}, follow_redirects=False)
        assert response.headers["location"] == "/"
        csrf = token(client.get("/audiences/new").text)


def test_live_count_matches_the_audience_and_saving_is_audited(app, lake) -> None:  # noqa: ANN001
    client = TestClient(app)
    csrf = sign_in(client, "mia")
    response = client.post("/audiences/preview", data={"segments": ["Champions", "Loyal"], "consent": "any",
                                                       "csrf_token": csrf})
    # A (Loyal, 150), C (Champions, 220), E (Champions, 60)
    assert re.search(r'data-testid="audience-count">3<', response.text)
    assert re.search(r'data-testid="audience-revenue">430<', response.text)
    response = client.post("/audiences/preview", data={"r_score_min": "abc", "csrf_token": csrf})
    assert "r_score_min: &#39;abc&#39; is not a whole number" in response.text
    response = client.post("/audiences", data={"segments": ["Champions", "Loyal"], "countries": "DE",
                                               "name": "DE best", "csrf_token": csrf}, follow_redirects=False)
    assert response.headers["location"] == "/audiences/de_best"
    page = client.get("/audiences/de_best").text
    assert "2 customers, 370 EUR" in page  # A and C: DE with consent
    (entry,) = [e for e in AuditLog(lake).entries() if e.action == "audience.save"]
    assert (entry.actor, entry.role, entry.target, entry.details["customers"]) == ("mia", "marketer", "de_best", 2)
    assert entry.details["filters"] == ["segment in Champions, Loyal", "country in DE", "marketing consent"]


def test_roles_decide_who_may_change_things_and_read_the_audit_log(app, lake) -> None:  # noqa: ANN001
    analyst = TestClient(app)
    csrf = sign_in(analyst, "ann")
    response = analyst.post("/audiences", data={"segments": "Loyal", "name": "Mine", "csrf_token": csrf})
    assert response.status_code == 403 and "your role (analyst) may not do this" in response.text
    assert "may count audiences but not save them" in analyst.get("/audiences/new").text
    assert analyst.get("/audit").status_code == 403
    assert analyst.get("/journeys/new").status_code == 403
    assert load_audiences(lake) == []
    admin = TestClient(app)
    sign_in(admin, "ada")
    page = admin.get("/audit").text
    assert "sign_in" in page and "ann" in page


def test_a_customer_shows_only_what_the_roles_persona_may_read(app) -> None:  # noqa: ANN001
    analyst, admin = TestClient(app), TestClient(app)
    sign_in(analyst, "ann")
    sign_in(admin, "ada")
    seen_by_analyst = analyst.get("/customers/A").text
    seen_by_admin = admin.get("/customers/A").text
    assert "anna@example.com" not in seen_by_analyst and "Anna" not in seen_by_analyst
    assert "raw personal data, which your role may not read" in seen_by_analyst
    assert "anna@example.com" in seen_by_admin and "Contact (raw personal data)" in seen_by_admin
    for page in (seen_by_analyst, seen_by_admin):  # both see the scores and the tokens analysts may use
        assert "Loyal" in page and "tok-A" in page
    assert analyst.get("/customers/nobody").status_code == 404


def test_segment_pages_show_sizes_members_and_migration(app) -> None:  # noqa: ANN001
    client = TestClient(app)
    sign_in(client, "ann")
    overview = client.get("/segments").text
    # Champions: C and E of six customers, revenue 280 of 970
    assert re.search(r'>Champions</a></th>\s*<td class="num">2</td><td class="num">33.3%</td>'
                     r'<td class="num">280</td>', overview)
    assert 'data-chart="segment-migration"' in overview and 'data-chart="segment-history"' in overview
    segment = client.get("/segments/rfm_segment/Champions").text
    assert re.findall(r'href="/customers/([^"]+)"', segment) == ["C", "E"]  # by revenue
    assert 'data-chart="segment-inflow"' in segment  # Loyal -> Champions (E)
    assert client.get("/segments/rfm_segment/Nope").status_code == 404
    assert client.get("/segments/nope/Champions").status_code == 404


def test_journeys_pages_say_why_they_are_unavailable(app) -> None:  # noqa: ANN001
    client = TestClient(app)
    sign_in(client, "mia")
    assert "no journeys here" in client.get("/journeys").text
    csrf = token(client.get("/audiences/new").text)
    response = client.post("/journeys", data={"name": "x", "template": "t", "holdout_percent": "10",
                                              "variants": "A", "csrf_token": csrf})
    assert response.status_code == 400 and "no journeys here" in response.text


def test_pages_send_security_headers(app) -> None:  # noqa: ANN001
    response = TestClient(app).get("/login")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


def test_pausing_and_starting_a_journey_over_http_edits_its_file_and_is_audited(lake, tmp_path: Path) -> None:  # noqa: ANN001
    import shutil

    import yaml

    from rfmlake.app.journeys import FolderJourneys

    repo_journeys = Path(__file__).resolve().parents[3] / "journeys"
    folder = tmp_path / "journeys"
    shutil.copytree(repo_journeys, folder)
    app = create_app(AppConfig(lake=lake, settings=Settings(), authenticator=LocalUsers(lake),
                               secret_key="test-session-key", journeys=FolderJourneys(folder, lake, Settings())))
    (path,) = [p for p in folder.glob("*.yaml")]
    journey_id = yaml.safe_load(path.read_text())["id"]
    assert yaml.safe_load(path.read_text()).get("status", "active") == "active"

    analyst = TestClient(app)
    csrf = sign_in(analyst, "ann")
    response = analyst.post(f"/journeys/{journey_id}/pause", data={"csrf_token": csrf})
    assert response.status_code == 403 and "your role (analyst) may not do this" in response.text
    marketer = TestClient(app)
    csrf = sign_in(marketer, "mia")
    assert marketer.post(f"/journeys/{journey_id}/pause", data={}).status_code == 403  # no CSRF token
    assert yaml.safe_load(path.read_text()).get("status", "active") == "active"

    response = marketer.post(f"/journeys/{journey_id}/pause", data={"csrf_token": csrf}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, f"/journeys/{journey_id}")
    assert yaml.safe_load(path.read_text())["status"] == "paused"
    assert re.search(r"paused", marketer.get(f"/journeys/{journey_id}").text)
    response = marketer.post(f"/journeys/{journey_id}/start", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303 and yaml.safe_load(path.read_text())["status"] == "active"
    assert marketer.post(f"/journeys/{journey_id}/delete", data={"csrf_token": csrf}).status_code == 404

    changes = [(e.actor, e.role, e.action, e.target, e.details) for e in AuditLog(lake).entries()
               if e.action.startswith("journey.")]
    assert changes == [("mia", "marketer", "journey.start", journey_id, {"from": "paused", "to": "active"}),
                       ("mia", "marketer", "journey.pause", journey_id, {"from": "active", "to": "paused"})]
