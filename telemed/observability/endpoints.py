"""``GET /metrics``: the Prometheus text format, for the loopback address or a bearer token.

Who may scrape (``allowed``): a client on the loopback address (a Prometheus on the same
host, or nginx's own checks) always; any other address only with ``Authorization: Bearer``
and the value of ``TELEMED_METRICS_TOKEN``, compared in constant time; with no token set,
nobody else. Behind nginx the client address is the real one (uvicorn takes it from
``X-Forwarded-For`` set by the proxy on the loopback address), so a request from outside
is never mistaken for a local one; nginx also restricts ``location = /metrics``
(deploy/nginx/telemed.conf).

The refusals are plain text (401 with ``WWW-Authenticate: Bearer``, 403): a scraper reads
them, not a person, and the page or JSON error shapes would mean nothing to it.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from telemed.deps import ClockDep, SettingsDep
from telemed.observability.collectors import DatabaseCollector
from telemed.observability.metrics import registry_for_scrape
from telemed.observability.signaling import refresh_gauges

router = APIRouter(tags=["operations"])


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1, or ::ffff:127.x (IPv4 loopback seen through an IPv6 socket)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def refusal(host: str | None, authorization: str | None, token: str | None) -> Response | None:
    """None if the request may scrape, else the response refusing it."""
    if is_loopback(host):
        return None
    if not token:
        return PlainTextResponse(
            "metrics are served to the loopback address only "
            "(set TELEMED_METRICS_TOKEN to allow bearer-token scrapes from elsewhere)\n",
            403,
        )
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return PlainTextResponse(
            "a bearer token is required\n", 401, headers={"WWW-Authenticate": "Bearer"}
        )
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return PlainTextResponse("wrong metrics token\n", 403)
    return None


class Scrape:
    """Everything one scrape reports: the in-process (or every worker's) metrics and the
    database's, as one registry-like object for ``generate_latest``."""

    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def exposition(*collectors: Collector) -> bytes:
    return generate_latest(Scrape(*collectors))


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    """The metrics, in the Prometheus text format."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    host = request.client.host if request.client else None
    refused = refusal(host, request.headers.get("authorization"), token)
    if refused is not None:
        return refused
    hub = getattr(request.app.state, "signaling", None)
    if hub is not None:
        refresh_gauges(hub.hub.stats)
    body = exposition(registry_for_scrape(), DatabaseCollector(request.app.state.engine, clock))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
