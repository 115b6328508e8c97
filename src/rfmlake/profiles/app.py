"""The profile API: an ASGI app (FastAPI) over a ProfileStore, served locally by `rfmlake serve`
(uvicorn) and on AWS by API Gateway + Lambda (lambdas/profile_api, Mangum).

Every error is one JSON shape, {"error": {"status", "code", "message"}}, without stack traces.
Logs name the route template, status and key name only: never a query string (the email lookup
carries an address in it), never a path value.

Everything but `/health` needs a key, the OpenAPI document (`/openapi.json`) and its UI (`/docs`)
included, unless `ApiConfig.public_schema` says otherwise. Wrong keys are limited per client
address (a token bucket of failed attempts), so keys cannot be guessed at request speed.

A person is served under any of their customer ids (docs/identity.md): the answer is the person's,
keyed by their primary customer id (its `customer_id`), and when the id asked for is a secondary
one a `Content-Location` header names the primary id's URL.
"""


import logging
import math
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from rfmlake.errors import RfmlakeError
from rfmlake.ingest.sql import ID_PATTERN
from rfmlake.profiles.auth import ApiKey, ApiKeyRing, TokenBucket
from rfmlake.profiles.store import MAX_PAGE_SIZE, InvalidQueryError, ProfileQuery, ProfileStore, ProfileStoreError

log = logging.getLogger("rfmlake.api")

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          429: "rate_limited", 431: "request_header_fields_too_large", 500: "internal_error", 503: "unavailable"}
# Every id ingest accepts (anything else is quarantined as bad_key), so every accepted customer can
# be fetched; `#` must be sent percent-encoded (%23), like any reserved character in a path.
CUSTOMER_ID_PATTERN = ID_PATTERN
SEGMENT_PATTERN = r"^[A-Za-z0-9 _.-]{1,64}$"


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class ErrorBody(BaseModel):
    status: int
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]
    generation: str


class Segment(BaseModel):
    name: str
    customers: int


class SegmentList(BaseModel):
    segments: list[Segment]


class ProfileList(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Recommendation(BaseModel):
    rank: int
    product_id: str
    product_name: str | None
    category: str | None
    brand: str | None
    score: float | None  # null when Personalize's batch output carried no scores
    source: Literal["similar_items", "segment_popular", "popular", "personalize"]


class RecommendationList(BaseModel):
    customer_id: str  # the person's primary customer id (the id asked for, or the person's if it was a secondary one)
    items: list[Recommendation]


@dataclass
class ApiConfig:
    """How the app authenticates: `api_key` (local; X-API-Key header against hashed keys) or
    `gateway` (AWS; API Gateway already checked IAM or a JWT, the app reads who from the event)."""

    auth: Literal["api_key", "gateway"] = "api_key"
    keys: ApiKeyRing | None = None
    rate_per_second: float = 50.0
    burst: int = 100
    # Serve /openapi.json and /docs without a key (off: the schema names every route and filter).
    public_schema: bool = False
    # Wrong API keys per client address: `failed_key_burst` attempts, then one per
    # 1 / failed_key_rate seconds; every request of a client out of attempts gets 429, a right
    # key included (else guessing would go on and a hit would show). At most
    # `failed_key_clients` addresses are tracked (bounded memory).
    failed_key_rate: float = 0.1
    failed_key_burst: int = 10
    failed_key_clients: int = 10_000


def _path_segment(customer_id: str) -> str:
    # Dots too: clients drop `.` and `..` segments before sending (docs/profiles-api.md, "Customer ids").
    return urllib.parse.quote(customer_id, safe="").replace(".", "%2E")


def _resolved(found: str, asked: str, path: str) -> dict[str, str] | None:
    """The Content-Location of an answer found under a secondary id: the primary id's URL."""
    return None if found == asked else {"Content-Location": path.format(_path_segment(found))}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"status": status, "code": _CODES.get(status, "error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": _CODES[status]} for status in (400, 401, 403, 429)
}
_ERRORS_404 = {**_ERRORS, 404: {"model": ErrorResponse, "description": "not_found"}}


def create_app(store: ProfileStore, config: ApiConfig, email_tokenizer: Callable[[str], str | None]) -> FastAPI:
    if config.auth == "api_key" and not config.keys:
        raise RfmlakeError("the profile API needs at least one API key: run `rfmlake profiles create-key`")
    bucket = TokenBucket(config.rate_per_second, config.burst)
    failed = TokenBucket(config.failed_key_rate, config.failed_key_burst, max_keys=config.failed_key_clients)
    # FastAPI's own /docs, /redoc and /openapi.json would answer anyone: served below, behind the key.
    app = FastAPI(title="rfmlake profile API", version="1", description="Unified customer profiles: identity "
                  "(tokenized), RFM scores and segment, cluster, value, recent activity, consent.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key (rfmlake profiles create-key)")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name the parameter and the rule, never echo the value (it may be an email address).
        parts = []
        for item in exc.errors():
            where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "path", "header"))
            parts.append(f"{where or 'request'}: {item.get('msg', 'invalid')}")
        return _error(400, "; ".join(parts) or "invalid request")

    @app.exception_handler(InvalidQueryError)
    async def _invalid_query(request: Request, exc: InvalidQueryError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(ProfileStoreError)
    async def _store_error(request: Request, exc: ProfileStoreError) -> JSONResponse:
        log.error("profile store unavailable: %s", type(exc).__name__)
        return _error(503, "profiles are not available right now")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected %s on %s", type(exc).__name__, _route_of(request))
        return _error(500, "internal error")

    app.add_middleware(AccessLogMiddleware)

    async def principal(request: Request, api_key: Annotated[str | None, Depends(header)]) -> ApiKey:
        if config.auth == "gateway":
            caller = _gateway_principal(request)
            if caller is None:
                raise ApiError(401, "the request carries no API Gateway authorizer context")
            key = ApiKey(caller, "", ("profiles", "email"))
        else:
            if not api_key:
                raise ApiError(401, "missing X-API-Key header")
            client = request.client.host if request.client else "-"
            wait = failed.wait(client)
            if wait > 0:
                raise ApiError(429, "too many wrong API keys from this address",
                               {"Retry-After": str(max(1, math.ceil(wait)))})
            found = config.keys.authenticate(api_key) if config.keys else None
            if found is None:
                failed.take(client)
                raise ApiError(401, "unknown API key")
            key = found
        request.state.key_name = key.name
        wait = bucket.take(key.name)
        if wait > 0:
            raise ApiError(429, "rate limit exceeded for this key", {"Retry-After": str(max(1, math.ceil(wait)))})
        return key

    Caller = Annotated[ApiKey, Depends(principal)]
    Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="page size")]
    Cursor = Annotated[str | None, Query(max_length=512, description="next_cursor of the previous page")]

    def need(key: ApiKey, scope: str) -> None:
        if scope not in key.scopes:
            raise ApiError(403, f"this API key lacks the {scope!r} scope")

    async def schema_reader(request: Request, api_key: Annotated[str | None, Depends(header)]) -> None:
        if not config.public_schema:
            await principal(request, api_key)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(schema_reader)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(schema_reader)])
    async def docs() -> HTMLResponse:
        # The document goes inline: the browser page could not send the key to fetch it.
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs",
                                   swagger_ui_parameters={"spec": app.openapi()})

    @app.get("/health", response_model=Health, responses={503: {"model": ErrorResponse}})
    async def health() -> Health:
        generation = store.active_generation()
        if generation is None:
            raise ApiError(503, "no profile generation is active")
        return Health(status="ok", generation=generation)

    @app.get("/profiles/{customer_id}", responses=_ERRORS_404, description=(
        "The person's profile, under any of their customer ids: `customer_id` in the answer is the "
        "person's primary id; for a secondary id the `Content-Location` header names the primary id's URL."))
    async def get_profile(key: Caller,
                    customer_id: Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN)]) -> JSONResponse:
        need(key, "profiles")
        profile = store.get(customer_id)
        if profile is None:  # a secondary id: the person's profile, under their primary id
            primary = store.primary_id(customer_id)
            profile = store.get(primary) if primary is not None and primary != customer_id else None
        if profile is None:
            raise ApiError(404, "no customer with this id")
        return JSONResponse(profile, headers=_resolved(profile["customer_id"], customer_id, "/profiles/{}"))

    @app.get("/customers/{customer_id}/recommendations", response_model=RecommendationList,
             responses=_ERRORS_404, description=(
                 "The person's recommendations, best first, under any of their customer ids: `customer_id` "
                 "in the answer is the person's primary id; for a secondary id the `Content-Location` "
                 "header names the primary id's URL."))
    async def customer_recommendations(
            key: Caller, customer_id: Annotated[str, Path(pattern=CUSTOMER_ID_PATTERN)],
            limit: Annotated[int, Query(ge=1, le=100, description="how many, best first")] = 10) -> JSONResponse:
        need(key, "profiles")
        primary: str | None = customer_id
        items = store.recommendations(customer_id)
        if items is None:  # a secondary id: the person's list, under their primary id
            primary = store.primary_id(customer_id)
            items = store.recommendations(primary) if primary is not None and primary != customer_id else None
        if items is None or primary is None:
            raise ApiError(404, "no customer with this id")
        # the store's items are the table's rows as written: returned as they are (no re-validation)
        return JSONResponse({"customer_id": primary, "items": items[:limit]},
                            headers=_resolved(primary, customer_id, "/customers/{}/recommendations"))

    @app.get("/profiles", response_model=ProfileList, responses=_ERRORS)
    async def find_profiles(
        key: Caller,
        email: Annotated[str | None, Query(max_length=320, description="exact email (matched by token)")] = None,
        segment: Annotated[str | None, Query(pattern=SEGMENT_PATTERN)] = None,
        cluster: Annotated[str | None, Query(max_length=64)] = None,
        q: Annotated[str | None, Query(min_length=1, max_length=100, description="city/country/segment")] = None,
        r_score_min: Annotated[int | None, Query(ge=0, le=100)] = None,
        r_score_max: Annotated[int | None, Query(ge=0, le=100)] = None,
        f_score_min: Annotated[int | None, Query(ge=0, le=100)] = None,
        f_score_max: Annotated[int | None, Query(ge=0, le=100)] = None,
        m_score_min: Annotated[int | None, Query(ge=0, le=100)] = None,
        m_score_max: Annotated[int | None, Query(ge=0, le=100)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ProfileList:
        need(key, "profiles")
        if email is not None:
            need(key, "email")
            token = email_tokenizer(email)
            if token is None:
                raise ApiError(400, "email: must not be blank")
            found = store.find_by_email_token(token)
            return ProfileList(items=[found] if found else [], next_cursor=None)
        ranges = {
            name: (low, high) for name, low, high in (
                ("r_score", r_score_min, r_score_max), ("f_score", f_score_min, f_score_max),
                ("m_score", m_score_min, m_score_max)) if low is not None or high is not None
        }
        page = store.search(ProfileQuery(segment=segment, cluster_label=cluster, ranges=ranges, text=q,
                                         limit=limit, cursor=cursor))
        return ProfileList(items=page.items, next_cursor=page.next_cursor)

    @app.get("/segments", response_model=SegmentList, responses=_ERRORS)
    async def list_segments(key: Caller) -> SegmentList:
        need(key, "profiles")
        return SegmentList(segments=[Segment(name=s.name, customers=s.customers) for s in store.segments()])

    @app.get("/segments/{name}/members", response_model=ProfileList, responses=_ERRORS_404)
    async def segment_members(key: Caller, name: Annotated[str, Path(pattern=SEGMENT_PATTERN)],
                        limit: Limit = 50, cursor: Cursor = None) -> ProfileList:
        need(key, "profiles")
        if name not in {s.name for s in store.segments()}:
            raise ApiError(404, "no segment with this name")
        page = store.search(ProfileQuery(segment=name, limit=limit, cursor=cursor))
        return ProfileList(items=page.items, next_cursor=page.next_cursor)

    return app


def _route_of(request: Request) -> str:
    return _route_template(request.scope)


def _route_template(scope: dict[str, Any]) -> str:
    return getattr(scope.get("route"), "path", None) or "(unmatched)"


class AccessLogMiddleware:
    """One log line per request: method, route template, status, duration, key name. A plain ASGI
    middleware (BaseHTTPMiddleware costs more than the whole profile lookup)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_record(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            key_name = scope.get("state", {}).get("key_name", "-")
            log.info("%s %s %d %.1fms key=%s", scope["method"], _route_template(scope), status[0],
                     (time.perf_counter() - started) * 1000, key_name)


def _gateway_principal(request: Request) -> str | None:
    event = request.scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    claims = (authorizer.get("jwt") or {}).get("claims") or authorizer.get("claims") or {}
    if claims.get("sub"):
        return f"jwt:{claims['sub']}"
    iam = authorizer.get("iam") or {}
    arn = iam.get("userArn") or (context.get("identity") or {}).get("userArn")
    return f"iam:{arn}" if arn else None
