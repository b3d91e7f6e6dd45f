"""The client address of the current request, for audit rows written deep in services."""

from __future__ import annotations

from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

client_address: ContextVar[str] = ContextVar("client_address", default="local")


class ClientAddressMiddleware:
    """Sets ``client_address`` for each request (copied into threadpool workers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            client_address.set(client[0] if client else "unknown")
        await self.app(scope, receive, send)
