"""The metrics the application updates as things happen, on a registry of our own.

Most operational numbers (consults by state, the outbox, the jobs) are read from the
database at scrape time (``telemed.observability.collectors``), so they are the same
whichever process is scraped and need no bookkeeping here. Only what exists in a process
and nowhere else is kept here: request latencies (and, in ``signaling``, the signalling hub's
sockets and rooms).

With several worker processes (``telemed serve --workers N``) prometheus-client keeps these
values in per-process files under ``PROMETHEUS_MULTIPROC_DIR`` and sums them at scrape
(``registry_for_scrape``); the signalling gauges add up the live processes only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# No ``*_created`` series: they double the output to say when a process started.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry(auto_describe=True)

# Pages are a few KB over slow links: most answers take milliseconds, uploads and
# exports seconds; the buckets cover both without a series per few ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram(
    "telemed_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template (not the raw path), method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


def multiprocess_dir() -> str | None:
    """The directory of the per-process files, when running in multi-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


def registry_for_scrape() -> CollectorRegistry:
    """What a scrape reports of the in-process metrics: this process's registry, or, in
    multi-process mode, the sum over every worker's files."""
    directory = multiprocess_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


class Scrape:
    """Several collectors (registries included) as one registry-like object, so that one
    scrape reports the in-process metrics and those read from the database."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def exposition(*collectors: Collector) -> bytes:
    """The Prometheus text format of everything ``collectors`` report."""
    return generate_latest(Scrape(*collectors))
