"""Security headers on every response (pure ASGI: no per-request task overhead)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
