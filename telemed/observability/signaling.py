"""The signalling hub's sockets, sessions and rooms as metrics.

``signaling.server.SignalingHub.stats()`` counts them; the hub knows nothing of Prometheus
(the ``signaling`` package imports nothing of ours). Two ways to report them:

- the standalone server (``telemed signal``, one process) reads ``stats()`` at scrape
  (``SignalingCollector``), answering ``GET /metrics`` on its own port before the WebSocket
  handshake (``metrics_responder``, given to ``signaling.server.serve``);
- the application's hub lives in every worker process, and a scrape reaches one of them, so
  each worker keeps gauges that add up over the live workers in multi-process mode
  (``multiprocess_mode="livesum"``), copied from ``stats()`` after each sweep of the hub
  (every second, ``SignalingHub.on_tick``) and at each scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, Gauge
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from signaling.server import ProcessRequest
from telemed.observability.access import refusal
from telemed.observability.collectors import gauge
from telemed.observability.metrics import REGISTRY, exposition

Stats = Callable[[], Mapping[str, int]]

HELP = {
    "connections": "Open signalling sockets attached to a call session.",
    "sessions": "Call sessions held by the signalling hub (connected or within their grace).",
    "rooms": "Signalling rooms open (one per consult in a call).",
}

GAUGES = {
    key: Gauge(f"telemed_signaling_{key}", text, multiprocess_mode="livesum", registry=REGISTRY)
    for key, text in HELP.items()
}


class SignalingCollector(Collector):
    """A hub's ``stats()`` read at scrape, for a process of its own (``telemed signal``)."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        for key, text in HELP.items():
            yield gauge(f"telemed_signaling_{key}", text, stats.get(key, 0))


def refresh_gauges(stats: Stats) -> None:
    """Copy a hub's ``stats()`` into this process's gauges (``GAUGES``)."""
    found = stats()
    for key, metric in GAUGES.items():
        metric.set(found.get(key, 0))


def metrics_responder(stats: Stats, token: str | None) -> ProcessRequest:
    """The standalone server's ``process_request``: answers ``GET /metrics`` on the
    signalling port (same access rule as the application's), lets every other request go
    on to the WebSocket handshake."""
    collector = SignalingCollector(stats)

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/metrics":
            return None
        remote = connection.remote_address
        host = str(remote[0]) if remote else None
        refused = refusal(host, request.headers.get("Authorization"), token)
        if refused is not None:
            response = connection.respond(refused.status, f"{refused.message}\n")
            for name, value in refused.headers.items():
                response.headers[name] = value
            return response
        response = connection.respond(200, exposition(collector).decode())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    return process_request
