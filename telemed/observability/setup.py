"""Wiring into the application, in one call from ``telemed.app.create_app``."""

from __future__ import annotations

import atexit
import os

from fastapi import FastAPI

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
        _forget_at_exit()


_registered = False


def _forget_at_exit() -> None:
    """In multi-process mode a worker's live gauges must leave the sum when it ends."""
    global _registered
    if _registered:
        return
    _registered = True
    from prometheus_client import multiprocess

    pid = os.getpid()
    atexit.register(lambda: multiprocess.mark_process_dead(pid))  # type: ignore[no-untyped-call]
