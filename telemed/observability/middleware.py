"""Per request: the request id, the latency histogram and the access log line.

Pure ASGI (no per-request task, and it sees WebSockets too). Outermost of our middleware,
so that the id is set before any other code runs and the time covers all of it.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemed import request_id
from telemed.observability.logs import ACCESS_LOGGER
from telemed.observability.metrics import REQUEST_SECONDS

access_log = logging.getLogger(ACCESS_LOGGER)

UNMATCHED = "<unmatched>"  # one series for every path no route matched (404s, scans)
# Any other method a client sends is counted as OTHER: a label value per invented method
# would let anyone grow the metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_HEADER = request_id.HEADER.lower().encode()


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/consults/{consult_id}``), never the raw
    path: one series per route, not per consult.

    The route on the scope knows its template relative to the router it was declared on
    (FastAPI keeps an included router's routes unprefixed), so the prefix in front of it
    is whatever part of the raw path comes before the part the route matches."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(template, str) or not template:
        return UNMATCHED
    path: str = scope.get("path", "")
    if pattern is None or pattern.match(path):
        return template
    start = path.find("/", 1)
    while start != -1:
        if pattern.match(path[start:]):
            return path[:start] + template
        start = path.find("/", start + 1)
    return template


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id.accept(Headers(scope=scope).get(request_id.HEADER))
        token = request_id.current.set(rid)
        try:
            if scope["type"] == "websocket":  # its audit rows and log lines carry the id
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send, rid)
        finally:
            request_id.current.reset(token)

    async def _http(self, scope: Scope, receive: Receive, send: Send, rid: str) -> None:
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception reaches Starlette's 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER]
                message["headers"] = [*headers, (_HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"]
            label = method if method in METHODS else "OTHER"
            REQUEST_SECONDS.labels(route_template(scope), label, str(status)).observe(seconds)
            access_log.info(
                "%s %s %d",
                method,
                scope["path"],
                status,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
