"""``telemed signal``: the signalling hub on its own port, keyed like the application.

Tokens minted by ``telemed serve`` (``POST /api/v1/consults/{id}/call``) work here because
both derive the hub secret from the same ``TELEMED_SECRET_KEY``; with ``TELEMED_REDIS_URL`` the
standalone hubs and the embedded ones share rooms and used tokens. Session events are written
to standard output as JSON lines; ``store`` also records them on the consults (same database),
``webhook`` POSTs each one as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import urllib.request
from collections.abc import Callable
from dataclasses import asdict

from sqlalchemy import Engine

from signaling.events import SessionEvent
from signaling.server import ProcessRequest, SignalingHub, serve
from telemed.sessions import service
from telemed.sessions.hub import build_hub
from telemed.settings import Settings

log = logging.getLogger(__name__)


def event_json(event: SessionEvent) -> str:
    record = asdict(event)
    record["at"] = event.at.isoformat()
    return json.dumps({"event": "session", **record}, default=str, separators=(",", ":"))


def _post(url: str, body: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - an operator-configured http(s) URL
        url, data=body.encode(), headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


async def run(
    settings: Settings,
    host: str,
    port: int,
    *,
    engine: Engine | None = None,
    webhook: str | None = None,
    echo: Callable[[str], None] = print,
    http: Callable[[SignalingHub], ProcessRequest] | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM. ``http(hub)`` may answer plain HTTP requests on the same
    port (``/metrics``: the command line wires it, this domain knows no metrics)."""

    async def on_event(event: SessionEvent) -> None:
        line = event_json(event)
        echo(line)
        if engine is not None:
            await asyncio.to_thread(service.record_event, engine, event)
        if webhook:
            try:
                await asyncio.to_thread(_post, webhook, line)
            except OSError as exc:
                log.warning("webhook %s failed: %s", webhook, exc)

    runtime = build_hub(settings, on_event)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await runtime.start()
    try:
        process_request = http(runtime.hub) if http is not None else None
        server = await serve(runtime.hub, host, port, process_request=process_request)
        bound = next(iter(server.sockets)).getsockname()[1]
        echo(json.dumps({"event": "listening", "host": host, "port": bound}))
        await stop.wait()
        server.close()
        await server.wait_closed()
    finally:
        await runtime.stop()
