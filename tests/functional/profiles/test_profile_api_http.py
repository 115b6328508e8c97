"""gold.customer_profile built from small gold tables, indexed into the embedded store, served by
uvicorn on a free localhost port; every endpoint and error over real HTTP; no PII in the logs."""

from __future__ import annotations

import logging

import httpx
import pytest

from rfmlake.ingest.pii import resolve_pii_key, tokenize
from rfmlake.profiles.build import PROFILE_TABLE
from rfmlake.profiles.local import local_app

EMAIL = "Alice.Martin@example.org"  # the address the served fixture gave customer C00003


def _get(served, path, key="full", **params):
    headers = {"X-API-Key": served["keys"][key]} if key else {}
    return httpx.get(served["base"] + path, headers=headers, params=params, timeout=10)


def test_profile_table_joins_every_source(served):
    import pyarrow.parquet as pq

    table = pq.read_table(served["lake"].require("gold", PROFILE_TABLE).path).to_pylist()
    assert len(table) == 40 and served["report"].profiles == 40
    c3 = next(r for r in table if r["customer_id"] == "C00003")
    assert c3["rfm_segment"] == "Champions" and c3["last_event_type"] == "add_to_cart" and c3["event_count"] == 2
    assert '"predicted_clv":100.0' in c3["value_json"]
    unscored = next(r for r in table if r["customer_id"] == "C00039")
    assert unscored["rfm_segment"] is None and unscored["value_json"] is None and unscored["event_count"] == 0


def test_health_needs_no_key(served):
    response = _get(served, "/health", key=None)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "generation": served["report"].generation}


def test_get_profile(served):
    response = _get(served, "/profiles/C00003")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == "C00003" and body["monetary"] == 120.5 and body["value"] == {"predicted_clv": 100.0}
    assert body["marketing_opt_in"] is False and body["last_event_at"].startswith("2024-03-03T09:00")


def test_a_customers_recommendations_best_first(served):
    response = _get(served, "/customers/C00003/recommendations")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["customer_id"] == "C00003"
    assert [i["rank"] for i in body["items"]] == list(range(1, 11))  # 10 by default, of the 12 held
    assert body["items"][0] == {"rank": 1, "product_id": "P001", "product_name": "Lamp 1", "category": "Home",
                                "brand": None, "score": 1.0, "source": "similar_items"}
    assert len(_get(served, "/customers/C00003/recommendations", limit=3).json()["items"]) == 3
    assert len(_get(served, "/customers/C00003/recommendations", limit=100).json()["items"]) == 12
    # a known customer without recommendations gets an empty list, an unknown one a 404
    assert _get(served, "/customers/C00020/recommendations").json() == {"customer_id": "C00020", "items": []}
    assert _get(served, "/customers/C99999/recommendations").status_code == 404
    # the profile itself does not carry them
    assert "recommendations" not in _get(served, "/profiles/C00003").json()


def test_lookup_by_email_matches_the_token(served):
    response = _get(served, "/profiles", email="  alice.martin@EXAMPLE.org ")
    assert response.status_code == 200
    assert [p["customer_id"] for p in response.json()["items"]] == ["C00003"]
    assert _get(served, "/profiles", email="nobody@example.org").json()["items"] == []


def test_segments_and_members_pagination(served):
    segments = _get(served, "/segments").json()["segments"]
    assert segments == [{"name": "At Risk", "customers": 25}, {"name": "Champions", "customers": 13}]
    seen, cursor = [], None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = _get(served, "/segments/At Risk/members", **params).json()
        seen += [p["customer_id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 25 == len(set(seen)) and seen == sorted(seen)


def test_filters_and_text_search(served):
    found = _get(served, "/profiles", q="lyon", segment="Champions", r_score_min=2, limit=100).json()["items"]
    assert found and all(p["city"] == "Lyon" and p["rfm_segment"] == "Champions" and p["r_score"] >= 2 for p in found)


@pytest.mark.parametrize(("path", "params", "key", "status"), [
    ("/profiles/C99999", {}, "full", 404),
    ("/segments/Nope/members", {}, "full", 404),
    ("/no/such/route", {}, "full", 404),
    ("/profiles/bad%20id!", {}, "full", 400),
    ("/profiles", {"limit": 0}, "full", 400),
    ("/profiles", {"cursor": "garbage"}, "full", 400),
    ("/profiles", {"r_score_min": 4, "r_score_max": 1}, "full", 400),
    ("/profiles", {"email": "   "}, "full", 400),
    ("/profiles/C00003", {}, None, 401),
    ("/customers/C00003/recommendations", {}, None, 401),
    ("/customers/C00003/recommendations", {"limit": 0}, "full", 400),
    ("/customers/C00003/recommendations", {"limit": 101}, "full", 400),
    ("/customers/bad%20id/recommendations", {}, "full", 400),
    ("/customers/C99999/recommendations", {}, "full", 404),
    ("/profiles", {"email": EMAIL}, "no_email", 403),
])
def test_errors_are_consistent_json(served, path, params, key, status):
    response = _get(served, path, key=key, **params)
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status and body["error"]["message"]
    assert "Traceback" not in response.text


def test_wrong_key_is_401(served):
    response = httpx.get(served["base"] + "/segments", headers={"X-API-Key": "rfk_wrong"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_rate_limit_per_key_returns_429(served, serve_app):
    app = local_app(served["lake"], served["settings"], rate_per_second=0.01, burst=2)
    with serve_app(app) as base:
        headers = {"X-API-Key": served["keys"]["full"]}
        statuses = [httpx.get(f"{base}/segments", headers=headers).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        other = httpx.get(f"{base}/segments", headers={"X-API-Key": served["keys"]["no_email"]})
        assert other.status_code == 200  # buckets are per key
        limited = httpx.get(f"{base}/segments", headers=headers)
        assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1


def test_openapi_is_served_with_a_key(served):
    spec = _get(served, "/openapi.json").json()
    assert {"/profiles/{customer_id}", "/profiles", "/segments", "/segments/{name}/members", "/health",
            "/customers/{customer_id}/recommendations"} <= set(spec["paths"])
    assert not {"/openapi.json", "/docs"} & set(spec["paths"])


def test_email_and_pii_never_logged(served, caplog):
    caplog.set_level(logging.DEBUG)
    key = resolve_pii_key(served["lake"], served["settings"])
    _get(served, "/profiles", email=EMAIL)
    _get(served, "/profiles", email="x" * 400)  # a 400 names the rule, not the value
    _get(served, "/profiles", email=EMAIL, key="no_email")
    # Everything the server side logged (the test's own HTTP client, httpx/httpcore, logs its URLs).
    messages = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "GET /profiles 200" in messages  # the access log did run
    for secret in (EMAIL, EMAIL.lower(), "alice", "x" * 50, tokenize(EMAIL, key, "email"), served["keys"]["full"]):
        assert secret.lower() not in messages.lower()
