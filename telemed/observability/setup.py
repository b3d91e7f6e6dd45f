"""Wiring into the application, in one call from ``telemed.app.create_app``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import multiprocess

from telemed.observability import endpoints
from telemed.observability.metrics import multiprocess_dir
from telemed.observability.middleware import ObservabilityMiddleware
from telemed.observability.signaling import refresh_gauges


def install(app: FastAPI) -> None:
    """``/metrics``, and the request id / latency / access-log middleware as the outermost
    of ours. Call after the other middleware is added (the last added runs first)."""
    app.include_router(endpoints.router)
    app.add_middleware(ObservabilityMiddleware)
    runtime = getattr(app.state, "signaling", None)
    if runtime is not None:
        hub = runtime.hub
        hub.on_tick = lambda: refresh_gauges(hub.stats)
    if multiprocess_dir() is not None:
        _leave_the_sum_at_shutdown(app)


def _leave_the_sum_at_shutdown(app: FastAPI) -> None:
    """In multi-process mode a worker's live gauges (the signalling counts) must leave the
    sum when it ends. Done when the application shuts down, after its own lifespan: uvicorn
    ends a worker by re-raising SIGTERM once the server has stopped, so no ``atexit`` hook
    would run. (A worker killed outright leaves its last values until the next start.)"""
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running: FastAPI) -> AsyncIterator[Any]:
        try:
            async with original(running) as state:
                yield state
        finally:
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    app.router.lifespan_context = lifespan
