"""``GET /metrics``: the Prometheus text format, for the loopback address or a bearer token.

Who may scrape (``telemed.observability.access``): a client on the loopback address (a
Prometheus on the same host) always; any other address only with ``Authorization: Bearer``
and the value of ``TELEMED_METRICS_TOKEN``; with no token set, nobody else. Behind nginx the
client address is the real one (uvicorn takes it from the ``X-Forwarded-For`` that the proxy
on the loopback address sets), so a request from outside is never mistaken for a local one;
nginx also restricts ``location = /metrics`` (deploy/nginx/telemed.conf).

The refusals are plain text (401 with ``WWW-Authenticate: Bearer``, 403): a scraper reads
them, not a person, and the page or JSON error shapes would mean nothing to it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from telemed.deps import ClockDep, SettingsDep
from telemed.observability.access import refusal
from telemed.observability.collectors import DatabaseCollector
from telemed.observability.metrics import exposition, registry_for_scrape
from telemed.observability.signaling import refresh_gauges
from telemed.web.access import EVERYONE, Access

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, settings: SettingsDep, clock: ClockDep) -> Response:
    """The metrics, in the Prometheus text format."""
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    host = request.client.host if request.client else None
    refused = refusal(host, request.headers.get("authorization"), token)
    if refused is not None:
        return PlainTextResponse(f"{refused.message}\n", refused.status, headers=refused.headers)
    hub = getattr(request.app.state, "signaling", None)
    if hub is not None:
        refresh_gauges(hub.hub.stats)
    body = exposition(registry_for_scrape(), DatabaseCollector(request.app.state.engine, clock))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    # Not a role: the loopback address, or the bearer token (tests/test_metrics_access.py).
    "metrics": Access(*EVERYONE, scope="from the loopback address, or with the bearer token"),
}
