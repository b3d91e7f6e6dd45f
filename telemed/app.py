"""The FastAPI application: composes the domains' routers, pages and error handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import swagger_ui_bundle
from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from starlette.middleware.gzip import GZipMiddleware

from telemed import __version__
from telemed.accounts import endpoints as accounts_api
from telemed.accounts import views as accounts_pages
from telemed.accounts.session_cache import SessionCache
from telemed.admin import views as admin_pages
from telemed.appointments import endpoints as appointments_api
from telemed.appointments import views as appointments_pages
from telemed.attachments import endpoints as attachments_api
from telemed.attachments import views as attachments_pages
from telemed.audit import endpoints as audit_api
from telemed.audit import views as audit_pages
from telemed.cases import views as cases_pages
from telemed.clock import SYSTEM_CLOCK, Clock
from telemed.consent import endpoints as consent_api
from telemed.consent import views as consent_pages
from telemed.consults import endpoints as consults_api
from telemed.consults import views as consults_pages
from telemed.db import make_engine
from telemed.directory import coordinator_views as directory_coordinator_pages
from telemed.directory import endpoints as directory_api
from telemed.directory import views as directory_pages
from telemed.facilities import endpoints as facilities_api
from telemed.idempotency.deps import install as install_idempotency
from telemed.interop import views as interop_pages
from telemed.interop.fhir import endpoints as fhir_api
from telemed.messages import endpoints as messages_api
from telemed.mfa import endpoints as mfa_api
from telemed.mfa import views as mfa_pages
from telemed.notes import endpoints as notes_api
from telemed.notes import views as notes_pages
from telemed.notifications import endpoints as notifications_api
from telemed.notifications import views as notifications_pages
from telemed.observability import setup as observability
from telemed.offers import endpoints as offers_api
from telemed.offers import views as offers_pages
from telemed.offers.policy import OfferPolicy
from telemed.oncall import endpoints as oncall_api
from telemed.oncall import views as oncall_pages
from telemed.precall import endpoints as precall_api
from telemed.precall import views as precall_pages
from telemed.precall.echo import EchoPool
from telemed.sessions import endpoints as sessions_api
from telemed.sessions import views as sessions_pages
from telemed.sessions.hub import build_hub, event_recorder
from telemed.settings import Environment, Settings, get_settings
from telemed.uow import WriteGate
from telemed.uptake import views as uptake_pages
from telemed.web.access import EVERYONE, PUBLIC, Access
from telemed.web.assets import ASSETS, VersionedStaticFiles
from telemed.web.errors import declare_common_errors, install_error_handlers
from telemed.web.input_guard import refuse_unstorable_input
from telemed.web.middleware import RequestMiddleware
from telemed.web.offline import router as service_worker

STATIC_DIR = ASSETS.root

API_DESCRIPTION = """
Everything the pages do, as JSON. Authenticate with `POST /api/v1/auth/login`: it sets the
`telemed_session` cookie (HttpOnly) and returns a `csrf_token`, which every POST, PATCH and
DELETE must send back in the `X-CSRF-Token` header. Errors always have the shape
`{"error": {"code": ..., "message": ..., "fields": [{"field": ..., "message": ...}]}}`.
"""


API_PREFIX = "/api/v1"

# The routes that take a file in their body (method, path): they have the upload limit.
UPLOAD_PATHS = (
    ("PATCH", r"/api/v1/uploads/[^/]+"),  # a chunk of a resumable upload
    ("POST", r"/consults/\d+/attachments"),  # the page's one-request upload form
)
FORM_OVERHEAD_BYTES = 64 * 1024  # a multipart form's other fields and boundaries

ALREADY_COMPRESSED = (
    "text/event-stream",
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/heic",
    "application/pdf",
    "application/octet-stream",
)


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, clock: Clock = SYSTEM_CLOCK
) -> FastAPI:
    """The application. ``clock`` is the one source of "now" for its views and endpoints
    (tests pass a clock they control)."""
    settings = settings or get_settings()
    engine = engine or make_engine(settings.sqlalchemy_url)

    signaling = build_hub(settings, event_recorder(engine))
    network_echo = EchoPool.from_settings(settings)  # the pre-call network test's peers

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await signaling.start()
        try:
            yield
        finally:
            await network_echo.close_all()
            await signaling.stop()
        engine.dispose()

    production = settings.env is Environment.production
    app = FastAPI(
        title="Telemed",
        version=__version__,
        description=API_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        # The API's map is for developers; in production it is not served.
        openapi_url=None if production else "/openapi.json",
        lifespan=lifespan,
        dependencies=[Depends(refuse_unstorable_input)],
    )
    app.state.settings = settings
    app.state.hsts = production  # production is served over TLS only
    app.state.clock = clock
    app.state.policy = OfferPolicy.from_settings(settings)
    app.state.engine = engine
    app.state.write_gate = WriteGate.of(engine)
    app.state.session_cache = SessionCache(settings.session_cache_seconds)
    app.state.signaling = signaling
    app.state.network_echo = network_echo
    app.add_middleware(
        RequestMiddleware,  # language, client address, security headers, body size
        max_bytes=settings.max_request_bytes,
        upload_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
        upload_paths=UPLOAD_PATHS,
        hsts=production,
    )
    # Pages, scripts and JSON shrink to about a quarter over a 2G link; photos and files
    # are compressed already.
    app.add_middleware(GZipMiddleware, minimum_size=1024, exclude_content_types=ALREADY_COMPRESSED)
    observability.install(app)  # /metrics; request ids, latencies, access log (outermost)
    install_error_handlers(app)
    declare_common_errors(app)
    install_idempotency(app)

    # Each domain's API router straight under the app with the prefix, not inside an
    # "/api/v1" router: FastAPI matches an included router's routes again at every level
    # of nesting (its match, then its handle), so one level fewer is less work per request.
    for api in (
        accounts_api,
        mfa_api,
        facilities_api,
        consults_api,
        consent_api,
        messages_api,
        attachments_api,
        audit_api,
        notes_api,
        directory_api,
        offers_api,
        oncall_api,
        appointments_api,
        notifications_api,
        sessions_api,
        precall_api,
    ):
        app.include_router(api.router, prefix=API_PREFIX)
    app.include_router(fhir_api.router)  # FHIR's own base, /fhir

    app.include_router(accounts_pages.router)
    app.include_router(admin_pages.router)
    app.include_router(mfa_pages.router)
    app.include_router(consults_pages.router)
    app.include_router(consent_pages.router)
    app.include_router(attachments_pages.router)
    app.include_router(audit_pages.router)
    app.include_router(notes_pages.router)
    app.include_router(cases_pages.router)
    app.include_router(directory_pages.router)
    app.include_router(directory_coordinator_pages.router)
    app.include_router(offers_pages.router)
    app.include_router(oncall_pages.router)
    app.include_router(appointments_pages.router)
    app.include_router(notifications_pages.router)
    app.include_router(sessions_pages.router)
    app.include_router(precall_pages.router)
    app.include_router(uptake_pages.router)
    app.include_router(interop_pages.router)
    app.include_router(service_worker)
    app.include_router(sessions_api.ws_router)
    app.mount(
        "/static/swagger",
        StaticFiles(directory=swagger_ui_bundle.swagger_ui_path),
        name="swagger",
    )
    app.mount("/static", VersionedStaticFiles(ASSETS), name="static")
    _add_operational_routes(app, engine, docs=not production)
    return app


def _add_operational_routes(app: FastAPI, engine: Engine, docs: bool) -> None:
    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "database down"}})
    def readyz() -> JSONResponse:
        """The database answers a query."""
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any driver error means "not ready"
            return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, 503)
        return JSONResponse({"status": "ok", "database": "ok"})

    if not docs:
        return

    @app.get("/docs", include_in_schema=False)
    def swagger(request: Request) -> HTMLResponse:
        """Swagger UI, served from our own static files (no CDN)."""
        response = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Telemed API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
        # Swagger UI boots with an inline script; allow it on this developer page only.
        response.headers["content-security-policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:"
        )
        return response


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "healthz": PUBLIC,
    "readyz": PUBLIC,
    "swagger": Access(*EVERYONE, scope="outside production only"),
    "openapi": Access(*EVERYONE, scope="outside production only"),  # FastAPI's /openapi.json
}
