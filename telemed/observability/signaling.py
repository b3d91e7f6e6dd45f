"""The signalling hub's sockets, sessions and rooms as metrics.

``signaling.server.SignalingHub.stats()`` counts them; the hub knows nothing of Prometheus
(the ``signaling`` package imports nothing of ours). Two ways to report them:

- the standalone server (``telemed signal``, one process) reads ``stats()`` at scrape
  (``SignalingCollector``);
- the application's hub lives in every worker process, and a scrape reaches one of them, so
  each worker keeps gauges that add up over the live workers in multi-process mode
  (``multiprocess_mode="livesum"``), copied from ``stats()`` after each sweep of the hub
  (every second, ``SignalingHub.on_tick``) and at each scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import Gauge
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from telemed.observability.collectors import gauge
from telemed.observability.metrics import REGISTRY

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
