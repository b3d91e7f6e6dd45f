"""Security headers on every response, the size of every request body, the language and the
client's address of every request (pure ASGI: no per-request task overhead)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.middleware.body_limit import RequestBodyLimitResponder
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemed import i18n
from telemed.audit.context import client_address

LANGUAGE_COOKIE = "lang"  # a visitor's choice of language before (or without) logging in


def remember_language(response: Response, language: str, *, secure: bool) -> None:
    """``language`` as the ``lang`` cookie. Set when one is chosen, and from the profile at
    login and logout, so that the login page after a logout or an expired session, and a
    page no session reaches, stay in the user's language: phones here seldom ask for
    Sesotho in ``Accept-Language``."""
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=365 * 86400,
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )


SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"permissions-policy", b"geolocation=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
# Pages and JSON carry clinical data: no browser or proxy cache may keep them. Static files
# (and a response that sets its own Cache-Control) are left alone.
NO_STORE = (b"cache-control", b"no-store")
CACHEABLE_PREFIXES = ("/static/",)


def add_security_headers(response: Response, hsts: bool = False) -> None:
    """The headers on a response built outside the middleware: Starlette answers an
    unhandled exception (500) from its outermost layer, which no middleware of ours wraps."""
    for name, value in [*SECURITY_HEADERS, NO_STORE, *([HSTS] if hsts else [])]:
        response.headers.setdefault(name.decode(), value.decode())


#: What a static file needs of the above. The others govern a document (what it may load,
#: frame, send as referrer, use): on a script or a stylesheet they are ~330 bytes a
#: response that a browser ignores, and a phone on 2G downloads a dozen of them on a first
#: load (issue 12's 60 KB a page). The service worker is not a static file (/sw.js): its
#: script keeps the CSP, which governs the worker.
STATIC_HEADERS = [(b"x-content-type-options", b"nosniff")]


class RequestMiddleware:
    """Per request, in one pure ASGI layer (each layer is a coroutine per request; issue 13):

    - the language (http and websocket): the ``lang`` cookie, else ``Accept-Language``, set
      before any view runs, so that messages made before the page is rendered (a flash, an
      error) are in that language too; a signed-in user's profile setting overrides it when
      the session is resolved (``telemed.deps``);
    - the client's address, for audit rows written deep in services
      (``telemed.audit.context``; copied into threadpool workers);
    - the security headers (a static file only ``STATIC_HEADERS``; ``hsts``:
      Strict-Transport-Security, for production, which is served over TLS only; on a
      developer's plain-HTTP server it would pin the browser to HTTPS), and ``no-store``
      but on static files;
    - the size of the request body: refused (413) past ``max_bytes`` as it arrives, before
      anything reads it whole (an anonymous client could otherwise make the server hold
      256 MiB of JSON before the 401). The upload routes (``upload_paths``: method and path
      pattern) take files and have ``upload_bytes``; the chunk endpoint checks each chunk
      against the declared length itself. FastAPI turns the refusal into an HTTP 413 our
      error handlers render.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        upload_bytes: int,
        upload_paths: Sequence[tuple[str, str]] = (),
        hsts: bool = False,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes
        self.upload_paths = [(method, re.compile(pattern)) for method, pattern in upload_paths]
        extra = [HSTS] if hsts else []
        self.headers = [*SECURITY_HEADERS, *extra, NO_STORE]
        self.static_headers = [*STATIC_HEADERS, *extra]

    def limit(self, method: str, path: str) -> int:
        for upload_method, pattern in self.upload_paths:
            if method == upload_method and pattern.fullmatch(path):
                return self.upload_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        i18n.set_language(
            i18n.negotiate(
                cookie=connection.cookies.get(LANGUAGE_COOKIE),
                accept_language=connection.headers.get("accept-language"),
            )
        )
        client = scope.get("client")
        client_address.set(client[0] if client else "unknown")
        if kind != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(CACHEABLE_PREFIXES)
        headers = self.static_headers if static else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                existing = {name for name, _ in message["headers"]}
                message["headers"].extend(h for h in headers if h[0] not in existing)
            await send(message)

        limit = self.limit(scope["method"], scope["path"])
        await RequestBodyLimitResponder(self.app, limit)(scope, receive, send_with_headers)
