"""Security headers on every response, and the language of every request (pure ASGI: no
per-request task overhead)."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemed import i18n

LANGUAGE_COOKIE = "lang"  # a visitor's choice of language before (or without) logging in

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


def add_security_headers(response: Response) -> None:
    """The headers on a response built outside the middleware: Starlette answers an
    unhandled exception (500) from its outermost layer, which no middleware of ours wraps."""
    for name, value in SECURITY_HEADERS:
        response.headers.setdefault(name.decode(), value.decode())


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                existing = {name for name, _ in message["headers"]}
                message["headers"].extend(h for h in SECURITY_HEADERS if h[0] not in existing)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LanguageMiddleware:
    """Sets the request's language from the ``lang`` cookie, else ``Accept-Language``, before
    any view runs, so that messages made before the page is rendered (a flash, an error)
    are in that language too. A signed-in user's profile setting overrides it when the
    session is resolved (``telemed.deps``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            connection = HTTPConnection(scope)
            i18n.set_language(
                i18n.negotiate(
                    cookie=connection.cookies.get(LANGUAGE_COOKIE),
                    accept_language=connection.headers.get("accept-language"),
                )
            )
        await self.app(scope, receive, send)
