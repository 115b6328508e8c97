"""The profile API under a hostile client (issue 15), over real HTTP on localhost: the schema needs a
key, request heads are bounded (431, never a 5xx), wrong keys are rate-limited per client address,
and every id ingest accepts can be fetched."""

from __future__ import annotations

import contextlib
import re
import socket
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rfmlake.ingest.pii import resolve_pii_key
from rfmlake.ingest.sql import ID_PATTERN
from rfmlake.lake import Lake
from rfmlake.profiles.auth import create_key
from rfmlake.profiles.indexer import index_profiles
from rfmlake.profiles.local import keys_file, local_app
from rfmlake.profiles.server import HeadLimits
from rfmlake.settings import Settings

# Ids the ingest pattern allows, with every punctuation mark it allows (ids of dots only included).
ODD_IDS = ["a@b.example", "x+y", "k=v", "t~1", "h#1", "c:1", "A.b_c-d", "-", "_", ".", "..", "#", "~user",
           "=" * 3, "+33612345678", "z" * 128]


def _path(customer_id: str) -> str:
    # Dots are percent-encoded too: clients (httpx, curl, browsers) drop "." and ".." path segments.
    return "/profiles/" + quote(customer_id, safe="").replace(".", "%2E")


def _raw_request(base: str, head: bytes, chunks: int = 1) -> bytes:
    """Send `head` as it is (in `chunks` writes) and return the whole response."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        step = max(1, len(head) // chunks)
        try:
            for start in range(0, len(head), step):
                sock.sendall(head[start:start + step])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the client finished: read the answer
        response = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            response += data
    return response


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def odd(tmp_path_factory, serve_app, write_gold):
    lake = Lake(tmp_path_factory.mktemp("odd-ids") / "lake")
    settings = Settings()
    write_gold(lake, resolve_pii_key(lake, settings), ids=ODD_IDS)
    index_profiles(lake)
    key = create_key(keys_file(lake), "full")
    app = local_app(lake, settings, rate_per_second=1000, burst=1000, failed_key_burst=3, failed_key_rate=0.01)
    with serve_app(app, HeadLimits(max_headers=100, max_head_bytes=16 * 1024)) as base:
        yield {"lake": lake, "base": base, "key": key, "settings": settings}


# -- the schema ---------------------------------------------------------------------------------
def test_schema_and_docs_need_a_key(served):
    base, key = served["base"], served["keys"]["full"]
    for path in ("/openapi.json", "/docs"):
        anonymous = httpx.get(base + path)
        assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
        assert httpx.get(base + path, headers={"X-API-Key": "rfk_wrong"}).status_code == 401
        assert httpx.get(base + path, headers={"X-API-Key": key}).status_code == 200
    page = httpx.get(base + "/docs", headers={"X-API-Key": key}).text
    assert "swagger-ui" in page and '"/profiles/{customer_id}"' in page  # the document inline
    assert httpx.get(base + "/redoc", headers={"X-API-Key": key}).status_code == 404
    assert httpx.get(base + "/health").status_code == 200  # the one open route


def test_a_public_schema_is_an_explicit_setting(served, serve_app):
    app = local_app(served["lake"], served["settings"], public_schema=True)
    with serve_app(app) as base:
        assert httpx.get(base + "/openapi.json").json()["info"]["title"] == "rfmlake profile API"
        assert httpx.get(base + "/docs").status_code == 200
        assert httpx.get(base + "/segments").status_code == 401  # the data still needs a key


# -- request heads ------------------------------------------------------------------------------
def _head(key: str, extra: list[bytes]) -> bytes:
    return b"\r\n".join([b"GET /segments HTTP/1.1", b"Host: localhost", f"X-API-Key: {key}".encode(),
                         *extra, b"Connection: close", b"", b""])


@pytest.mark.parametrize(("what", "extra"), [
    ("a 1 MB header", [b"X-Big: " + b"a" * 1_000_000]),
    ("5,000 headers", [f"X-H{i}: v".encode() for i in range(5000)]),
    ("101 headers", [f"X-H{i}: v".encode() for i in range(98)]),  # + Host, X-API-Key, Connection
    ("17 KB over a few headers", [f"X-H{i}: ".encode() + b"b" * 4300 for i in range(4)]),
    ("a 20 KB path", []),
])
def test_a_head_beyond_the_limits_is_431(odd, what, extra):
    head = _head(odd["key"], extra)
    if what == "a 20 KB path":
        head = head.replace(b"GET /segments", b"GET /segments?" + b"q" * 20_000)
    response = _raw_request(odd["base"], head, chunks=7)
    assert _status(response) == 431, (what, response[:200])
    assert b'"code": "request_header_fields_too_large"' in response
    # and the server goes on serving
    assert httpx.get(odd["base"] + "/segments", headers={"X-API-Key": odd["key"]}).status_code == 200


def test_a_head_within_the_limits_is_served(odd):
    extra = [f"X-H{i}: v".encode() for i in range(97)]  # 100 headers in all
    response = _raw_request(odd["base"], _head(odd["key"], extra))
    assert _status(response) == 200, response[:300]


def test_an_unfinished_head_is_refused_once_it_passes_the_limit(odd):
    """A header that never ends is not buffered until it does: the 431 comes while it is sent."""
    address = urlsplit(odd["base"])
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"GET /segments HTTP/1.1\r\nHost: localhost\r\nX-Endless: ")
        response, sent = b"", 0
        try:
            while sent < 1_000_000 and not response:
                sock.sendall(b"x" * 4096)
                sent += 4096
                sock.settimeout(0.01)
                with contextlib.suppress(TimeoutError):
                    response = sock.recv(65536)
                sock.settimeout(10)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not response:
            sock.settimeout(10)
            response = sock.recv(65536)
    assert _status(response) == 431
    assert sent < 200_000  # refused long before the client stopped sending


# -- failed keys ---------------------------------------------------------------------------------
def _client(local_address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=local_address), timeout=10)


def test_wrong_keys_are_rate_limited_per_client_address(odd):
    base, key = odd["base"], odd["key"]
    with _client("127.0.0.2") as guesser, _client("127.0.0.3") as other:
        statuses = [guesser.get(base + "/segments", headers={"X-API-Key": f"rfk_guess{i}"}).status_code
                    for i in range(4)]
        assert statuses == [401, 401, 401, 429]
        limited = guesser.get(base + "/segments", headers={"X-API-Key": key})
        assert limited.status_code == 429  # the right key too: a hit must not show while guessing
        assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["Retry-After"]) >= 1
        assert guesser.get(base + "/health").status_code == 200
        assert other.get(base + "/segments", headers={"X-API-Key": key}).status_code == 200  # per address
        assert other.get(base + "/segments").status_code == 401  # no key is no guess


# -- ids -----------------------------------------------------------------------------------------
def test_the_api_takes_exactly_the_ids_ingest_accepts():
    from rfmlake.profiles.app import CUSTOMER_ID_PATTERN

    assert CUSTOMER_ID_PATTERN == ID_PATTERN
    assert all(re.fullmatch(ID_PATTERN, customer_id) for customer_id in ODD_IDS)


@pytest.mark.parametrize("customer_id", ODD_IDS)
def test_every_id_ingest_accepts_can_be_fetched(odd, customer_id):
    response = httpx.get(odd["base"] + _path(customer_id), headers={"X-API-Key": odd["key"]})
    assert response.status_code == 200, (customer_id, response.text)
    assert response.json()["customer_id"] == customer_id


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(customer_id=st.from_regex(ID_PATTERN, fullmatch=True))
def test_any_id_of_the_pattern_reaches_the_store(odd, customer_id):
    """Unknown ids of the pattern get 404 from the store, never a 400 for their shape."""
    response = httpx.get(odd["base"] + _path(customer_id), headers={"X-API-Key": odd["key"]})
    assert response.status_code == (200 if customer_id in ODD_IDS else 404), (customer_id, response.text)


@pytest.mark.parametrize("customer_id", ["a/b", "a b", "é", "\U0001f600", "z" * 129, "a\\b", "a%b", "a?b"])
def test_ids_outside_the_pattern_are_a_400_or_no_route(odd, customer_id):
    response = httpx.get(odd["base"] + "/profiles/" + quote(customer_id, safe=""), headers={"X-API-Key": odd["key"]})
    assert response.status_code in (400, 404) and response.json()["error"]["status"] == response.status_code
