"""The client address of the current request, for audit rows written deep in services.

Set per request by ``telemed.web.middleware.RequestMiddleware`` (copied into threadpool
workers); "local" outside a request (jobs, the command line).
"""

from __future__ import annotations

from contextvars import ContextVar

client_address: ContextVar[str] = ContextVar("client_address", default="local")
