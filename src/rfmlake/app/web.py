"""The marketing app: a FastAPI app of server-rendered pages (Jinja2) with htmx for the live parts,
served by `rfmlake app` (uvicorn) and on AWS by Lambda behind API Gateway (lambdas/marketing_app).

Security: a signed session cookie (HttpOnly, SameSite=Lax, Secure on AWS) holds the signed-in user
and a CSRF token; every POST must carry that token (a form field, or htmx's X-CSRF-Token header),
or it is refused. Every change is written to the audit log (rfmlake.app.audit). Pages send a
Content-Security-Policy that allows scripts from the app only.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from rfmlake import charts
from rfmlake.app import lakedata, runs
from rfmlake.app.audit import AuditLog
from rfmlake.app.auth import ROLE_PERSONAS, ROLES, Authenticator, User
from rfmlake.app.journeys import JourneyEditError, JourneyPort
from rfmlake.audiences import (
    AudienceError,
    AudienceFilters,
    audience_id,
    get_audience,
    load_audiences,
    measure,
    parse_filters,
    save_audience,
)
from rfmlake.errors import RfmlakeError
from rfmlake.governance.model import GovernanceConfig, load_governance
from rfmlake.lake import Lake
from rfmlake.settings import Settings

log = logging.getLogger("rfmlake.app")
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "rfmlake_app"
SESSION_SECONDS = 8 * 3600
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
_VARIANT = r"^[A-Za-z][A-Za-z0-9_]{0,15}$"


class Forbidden(Exception):
    pass


class SignInRequired(Exception):
    pass


@dataclass
class AppConfig:
    lake: Lake
    settings: Settings
    authenticator: Authenticator
    secret_key: str
    journeys: JourneyPort
    https_only: bool = False
    governance: GovernanceConfig | None = None
    title: str = "rfmlake marketing"
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ formats
def money(value: float | None, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{float(value) * 100:.{digits}f}%"


def number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{float(value):,.{digits}f}"


def _optional_number(form: FormData, key: str, kind: type = float) -> Any:
    raw = str(form.get(key) or "").strip()
    if not raw:
        return None
    try:
        return kind(raw)
    except ValueError:
        raise AudienceError(f"{key}: {raw!r} is not a {'whole ' if kind is int else ''}number") from None


def filters_from_form(form: FormData) -> AudienceFilters:
    data: dict[str, Any] = {
        "segments": [s for s in form.getlist("segments") if s], "clusters": [c for c in form.getlist("clusters") if c],
        "engagement_segments": [e for e in form.getlist("engagement_segments") if e],
        "countries": [c for c in form.getlist("countries") if c], "consent": form.get("consent") or "opted_in",
    }
    for name in ("r_score", "f_score", "m_score"):
        for bound in ("min", "max"):
            data[f"{name}_{bound}"] = _optional_number(form, f"{name}_{bound}", int)
    for key in ("p_alive_min", "p_alive_max", "clv_min", "clv_max"):
        data[key] = _optional_number(form, key)
    data["min_events"] = _optional_number(form, "min_events", int)
    data["active_within_days"] = _optional_number(form, "active_within_days", int)
    return parse_filters({k: v for k, v in data.items() if v is not None})


def parse_variants(text: str) -> list[tuple[str, float]]:
    """`A=50, B=50` -> [("A", 50.0), ("B", 50.0)]; one variant may be given without a share (100%)."""
    import re

    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        raise JourneyEditError("variants: give at least one, e.g. A=100 or A=50, B=50")
    out: list[tuple[str, float]] = []
    for part in parts:
        name, _, share = part.partition("=")
        name = name.strip()
        if not re.match(_VARIANT, name):
            raise JourneyEditError(f"variants: {name!r} is not a variant id (a letter, then letters, digits, _)")
        try:
            value = float(share) if share.strip() else (100.0 if len(parts) == 1 else math.nan)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise JourneyEditError(f"variants: {part!r} needs a share above 0, e.g. {name}=50")
        out.append((name, value))
    return out


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute URL (an open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


# -------------------------------------------------------------------------------------------- app
def create_app(config: AppConfig) -> FastAPI:
    governance = config.governance or load_governance()
    for role in ROLES:  # every role's persona exists: fail at start, not on the first profile page
        governance.persona(ROLE_PERSONAS[role])
    reader = lakedata.LakeReader(config.lake)
    audit = AuditLog(config.lake)
    def currency(request: Request) -> dict[str, Any]:
        with reader.cursor() as con:
            return {"currency": lakedata.reporting_currency(con, config.settings.reporting_currency)}

    # Amounts are in the currency of the lake's last build (chosen from the data unless configured).
    templates = Jinja2Templates(directory=str(HERE / "templates"), context_processors=[currency])
    templates.env.filters.update(money=money, percent=percent, number=number, urlpart=lambda s: quote(str(s), safe=""))
    templates.env.globals.update(title=config.title, dimensions=lakedata.DIMENSIONS)

    app = FastAPI(title=config.title, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.config = config
    app.state.reader = reader
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith("/static"):
            response.headers.setdefault("Cache-Control", "no-store")
        route = getattr(request.scope.get("route"), "path", "(unmatched)")
        log.info("%s %s %d %.1fms", request.method, route, response.status_code, (time.perf_counter() - started) * 1000)
        return response

    app.add_middleware(SessionMiddleware, secret_key=config.secret_key, session_cookie=SESSION_COOKIE,
                       max_age=SESSION_SECONDS, same_site="lax", https_only=config.https_only)

    # -- helpers ---------------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = secrets.token_urlsafe(32)
            request.session["csrf"] = token
        return token

    def user_of(request: Request) -> User | None:
        data = request.session.get("user")
        if not data or data.get("role") not in ROLES or time.time() - data.get("at", 0) > SESSION_SECONDS:
            return None
        return User(data["name"], data["role"])

    def require_user(request: Request, permission: str | None = None) -> User:
        user = user_of(request)
        if user is None:
            raise SignInRequired()
        if permission is not None and not user.can(permission):
            raise Forbidden(f"your role ({user.role}) may not do this")
        return user

    async def checked_form(request: Request) -> FormData:
        form = await request.form()
        sent = str(form.get("csrf_token") or request.headers.get("x-csrf-token") or "")
        expected = request.session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise Forbidden("the form's security token is missing or expired: reload the page and try again")
        return form

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        user = user_of(request)
        context.update(request=request, user=user, csrf_token=csrf_token(request), path=request.url.path)
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    def is_htmx(request: Request) -> bool:
        return request.headers.get("hx-request") == "true"

    def record(user: User, action: str, target: str, details: dict[str, Any] | None = None) -> None:
        audit.record(user.name, user.role, action, target, details)

    # -- errors ----------------------------------------------------------------------------------
    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if is_htmx(request):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return page(request, "error.html", 403, heading="Not allowed", message=str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        return page(request, "error.html", exc.status_code, heading=f"Error {exc.status_code}", message=message)

    @app.exception_handler(RfmlakeError)
    async def _rfmlake(request: Request, exc: RfmlakeError) -> Response:
        return page(request, "error.html", 400, heading="That did not work", message=str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected %s on %s", type(exc).__name__, getattr(request.scope.get("route"), "path", "?"),
                  exc_info=exc)
        return page(request, "error.html", 500, heading="Something went wrong",
                    message="The app could not show this page. The error is in the app's log.")

    # -- sign-in ---------------------------------------------------------------------------------
    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", next=_safe_next(next), error=None)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        name, password = str(form.get("username") or "").strip(), str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or "/"))
        user = config.authenticator.sign_in(name, password) if name and password else None
        if user is None:
            return page(request, "login.html", 401, next=target, error="Unknown user name or wrong password.")
        request.session.clear()  # a new session (and CSRF token) at sign-in: no fixation
        request.session["user"] = {"name": user.name, "role": user.role, "at": time.time()}
        csrf_token(request)
        record(user, "sign_in", user.name)
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await checked_form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- segments --------------------------------------------------------------------------------
    @app.get("/")
    async def home(request: Request) -> Response:
        require_user(request)
        return RedirectResponse("/segments", status_code=303)

    @app.get("/segments", response_class=HTMLResponse)
    def segments(request: Request, dimension: str = "rfm_segment") -> HTMLResponse:
        require_user(request)
        if dimension not in lakedata.DIMENSIONS:
            raise StarletteHTTPException(404)
        with reader.cursor() as con:
            table = lakedata.segment_table(con, dimension)
            dates, series = lakedata.history(con, dimension)
            moves = lakedata.migration(con, dimension)
            as_of = lakedata.latest_as_of(con)
            currency = lakedata.reporting_currency(con, config.settings.reporting_currency)
        colors = charts.category_colors([r.name for r in table])
        label = lakedata.DIMENSIONS[dimension]
        figures = [
            charts.labelled_hbar_chart("segment-sizes", f"Customers per {label}",
                                       [(r.name, r.customers) for r in table], colors=colors),
            charts.labelled_hbar_chart("segment-revenue", f"Revenue per {label} ({currency})",
                                       [(r.name, r.revenue) for r in table], colors=colors, fmt=money),
        ]
        if any(r.clv is not None for r in table):
            figures.append(charts.labelled_hbar_chart(
                "segment-clv", f"Predicted CLV per {label} ({currency})",
                [(r.name, r.clv or 0.0) for r in table], colors=colors, fmt=money))
        if len(dates) > 1:
            figures.append(charts.line_chart(dates, [charts.Series(name, values) for name, values in series.items()],
                                             title=f"Customers per {label} over time", x_label="as of",
                                             y_label="customers", name="segment-history"))
        if moves is not None:
            figures.append(charts.heatmap("segment-migration", f"Moves from {moves.from_date} to {moves.to_date}",
                                          moves.segments, moves.segments, moves.counts, row_title="from",
                                          column_title="to", slanted_columns=True, wide=True))
        return page(request, "segments.html", dimension=dimension, rows=table, figures=figures, as_of=as_of,
                    has_history=len(dates) > 1, has_migration=moves is not None)

    @app.get("/segments/{dimension}/{name}", response_class=HTMLResponse)
    def segment(request: Request, dimension: str, name: str, page_number: int = 0) -> HTMLResponse:
        user = require_user(request)
        if dimension not in lakedata.DIMENSIONS:
            raise StarletteHTTPException(404)
        with reader.cursor() as con:
            row = next((r for r in lakedata.segment_table(con, dimension) if r.name == name), None)
            if row is None:
                raise StarletteHTTPException(404)
            columns, members, total = lakedata.segment_members(con, governance, user.persona, dimension, name,
                                                               max(page_number, 0))
            moves = lakedata.migration(con, dimension, name)
        figures = []
        if moves is not None:
            i = moves.segments.index(name) if name in moves.segments else None
            if i is not None:
                others = [(j, s) for j, s in enumerate(moves.segments) if s != name]
                came = [(s, moves.counts[j][i]) for j, s in others if moves.counts[j][i]]
                went = [(s, moves.counts[i][j]) for j, s in others if moves.counts[i][j]]
                figures.append(charts.labelled_hbar_chart("segment-inflow", f"Came into {name} from",
                                                          sorted(came, key=lambda kv: -kv[1])))
                figures.append(charts.labelled_hbar_chart("segment-outflow", f"Left {name} for",
                                                          sorted(went, key=lambda kv: -kv[1])))
        pages = max(1, math.ceil(total / lakedata.PAGE_SIZE))
        return page(request, "segment.html", dimension=dimension, segment=row, columns=columns, members=members,
                    total=total, page_number=max(page_number, 0), pages=pages, figures=figures)

    @app.get("/customers/{customer_id}", response_class=HTMLResponse)
    def customer(request: Request, customer_id: str) -> HTMLResponse:
        user = require_user(request)
        if len(customer_id) > 128:
            raise StarletteHTTPException(404)
        with reader.cursor() as con:
            found = lakedata.profile(config.lake, con, governance, user.persona, customer_id)
        if found is None:
            raise StarletteHTTPException(404)
        return page(request, "customer.html", profile=found)

    # -- audiences -------------------------------------------------------------------------------
    @app.get("/audiences", response_class=HTMLResponse)
    def audiences(request: Request) -> HTMLResponse:
        require_user(request)
        return page(request, "audiences.html", audiences=load_audiences(config.lake))

    def builder(request: Request, filters: AudienceFilters, *, error: str | None = None, name: str = "",
                description: str = "", status_code: int = 200) -> HTMLResponse:
        with reader.cursor() as con:
            options = lakedata.filter_options(con)
            try:
                size, size_error = measure(con, filters), None
            except AudienceError as exc:
                size, size_error = None, str(exc)
        return page(request, "audience_new.html", status_code, options=options, filters=filters, size=size,
                    size_error=size_error, error=error, name=name, description=description)

    @app.get("/audiences/new", response_class=HTMLResponse)
    def new_audience(request: Request) -> HTMLResponse:
        require_user(request)
        return builder(request, AudienceFilters())

    @app.post("/audiences/preview", response_class=HTMLResponse)
    async def preview(request: Request) -> HTMLResponse:
        require_user(request)
        form = await checked_form(request)
        try:
            filters = filters_from_form(form)
        except AudienceError as exc:
            return page(request, "_audience_size.html", size=None, size_error=str(exc))
        with reader.cursor() as con:
            size = measure(con, filters)
        return page(request, "_audience_size.html", size=size, size_error=None)

    @app.post("/audiences")
    async def create_audience(request: Request) -> Response:
        user = require_user(request, "edit_audiences")
        form = await checked_form(request)
        name, description = str(form.get("name") or "").strip(), str(form.get("description") or "")
        try:
            filters = filters_from_form(form)
        except AudienceError as exc:
            return builder(request, AudienceFilters(), error=str(exc), name=name, description=description,
                           status_code=400)
        if not name:
            return builder(request, filters, error="Give the audience a name.", name=name, description=description,
                           status_code=400)
        with reader.cursor() as con:
            size = measure(con, filters)
        try:
            saved = save_audience(config.lake, audience_id=audience_id(name), name=name, description=description,
                                  filters=filters, size=size, actor=user.name)
        except AudienceError as exc:
            return builder(request, filters, error=str(exc), name=name, description=description, status_code=400)
        record(user, "audience.save", saved.audience_id, {"name": saved.name, "filters": filters.describe(),
                                                           "customers": saved.customers})
        return RedirectResponse(f"/audiences/{saved.audience_id}", status_code=303)

    @app.get("/audiences/{audience}", response_class=HTMLResponse)
    def show_audience(request: Request, audience: str) -> HTMLResponse:
        require_user(request)
        try:
            saved = get_audience(config.lake, audience)
        except AudienceError:
            raise StarletteHTTPException(404) from None
        with reader.cursor() as con:
            size = measure(con, saved.filters)
        return page(request, "audience.html", audience=saved, size=size)

    # -- journeys --------------------------------------------------------------------------------
    @app.get("/journeys", response_class=HTMLResponse)
    def journeys(request: Request) -> HTMLResponse:
        require_user(request)
        return page(request, "journeys.html", port=config.journeys, journeys=config.journeys.list())

    def journey_form(request: Request, *, error: str | None = None, values: dict[str, Any] | None = None,
                     status_code: int = 200) -> HTMLResponse:
        return page(request, "journey_new.html", status_code, port=config.journeys, templates_=config.journeys.list(),
                    audiences=load_audiences(config.lake), error=error,
                    values=values or {"holdout_percent": "10", "variants": "A=50, B=50"})

    @app.get("/journeys/new", response_class=HTMLResponse)
    def new_journey(request: Request) -> HTMLResponse:
        require_user(request, "edit_journeys")
        return journey_form(request)

    @app.post("/journeys")
    async def create_journey(request: Request) -> Response:
        user = require_user(request, "edit_journeys")
        form = await checked_form(request)
        values = {k: str(form.get(k) or "") for k in ("name", "template", "audience", "holdout_percent", "variants")}
        try:
            name = values["name"].strip()
            if not name:
                raise JourneyEditError("name: give the journey a name")
            try:
                holdout = float(values["holdout_percent"])
            except ValueError:
                raise JourneyEditError("holdout: give the share held out as a number from 0 to 99") from None
            chosen = None
            if values["audience"]:
                saved = get_audience(config.lake, values["audience"])
                chosen = (saved.name, saved.filters)
            created = config.journeys.create(template_id=values["template"], journey_id=audience_id(name), name=name,
                                             holdout_percent=holdout, variants=parse_variants(values["variants"]),
                                             audience=chosen)
        except (JourneyEditError, AudienceError) as exc:
            return journey_form(request, error=str(exc), values=values, status_code=400)
        record(user, "journey.create", created.id, {"template": values["template"],
                                                    "audience": values["audience"] or None,
                                                    "holdout_percent": created.holdout_percent,
                                                    "variants": created.variants, "status": created.status})
        return RedirectResponse(f"/journeys/{created.id}", status_code=303)

    @app.get("/journeys/{journey_id}", response_class=HTMLResponse)
    def journey(request: Request, journey_id: str) -> HTMLResponse:
        require_user(request)
        try:
            summary = config.journeys.get(journey_id)
        except JourneyEditError:
            raise StarletteHTTPException(404) from None
        results = config.journeys.results(journey_id)
        return page(request, "journey.html", journey=summary, results=results, figures=_journey_figures(results))

    @app.post("/journeys/{journey_id}/{action}")
    async def change_journey(request: Request, journey_id: str, action: str) -> Response:
        user = require_user(request, "edit_journeys")
        await checked_form(request)
        status = {"start": "active", "pause": "paused"}.get(action)
        if status is None:
            raise StarletteHTTPException(404)
        before = config.journeys.get(journey_id)
        changed = config.journeys.set_status(journey_id, status)
        record(user, f"journey.{action}", journey_id, {"from": before.status, "to": changed.status})
        return RedirectResponse(f"/journeys/{journey_id}", status_code=303)

    # -- runs and audit --------------------------------------------------------------------------
    @app.get("/runs", response_class=HTMLResponse)
    def run_list(request: Request) -> HTMLResponse:
        require_user(request)
        return page(request, "runs.html", runs=runs.recent_runs(config.lake))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_detail(request: Request, run_id: str) -> HTMLResponse:
        require_user(request)
        found = runs.load_run(config.lake, run_id)
        if found is None:
            raise StarletteHTTPException(404)
        figures = [charts.labelled_hbar_chart(
            "stage-timings", "Seconds per stage", [(s["name"], float(s.get("seconds") or 0)) for s in found.stages],
            fmt=lambda v: f"{v:.1f} s")]
        figures.append(charts.labelled_hbar_chart("quarantine-reasons", "Quarantined rows by reason",
                                                  found.quarantine_by_reason()))
        quality = {zone: runs.quality_rows(report) for zone, report in found.quality.items()}
        return page(request, "run.html", run=found, figures=figures, quality=quality)

    @app.get("/audit", response_class=HTMLResponse)
    def audit_page(request: Request) -> HTMLResponse:
        require_user(request, "read_audit")
        return page(request, "audit.html", entries=audit.entries())

    return app


def _journey_figures(results: Any) -> list[str]:
    """Conversion per group and lift over the holdout, each with its interval (rfmlake.charts)."""
    latest = results.latest()
    if not latest:
        return []
    interval_chart = getattr(charts, "interval_chart", None)
    if interval_chart is None:  # pragma: no cover - the charts of the journeys work are missing
        return []
    level = f"{(results.confidence or 0.95):.0%}"
    holdout = next((r for r in latest if r["group"] == "holdout"), None)
    rates = [(r["variant"], r["conversion_rate"], r["conversion_rate_low"], r["conversion_rate_high"]) for r in latest]
    lifts = [(r["variant"], r["lift"], r["lift_low"], r["lift_high"]) for r in latest if r["group"] != "holdout"]
    figures = [interval_chart("journey-conversion", f"Conversion rate by group ({level} intervals)", rates,
                              reference=holdout["conversion_rate"] if holdout else None,
                              reference_label="holdout" if holdout else "")]
    if lifts:
        figures.append(interval_chart("journey-lift", f"Lift over the holdout, percentage points ({level} intervals)",
                                      lifts, reference=0.0, reference_label="no effect"))
    return figures
