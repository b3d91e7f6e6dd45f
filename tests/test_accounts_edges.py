"""Edges around every response: the security headers on pages, error pages and JSON.

(The per-address login throttle is in tests/test_login_throttle.py. The client address is
the TCP peer's, ``request.client.host``, the same for the throttle and for audit rows;
behind nginx, uvicorn takes it from ``X-Forwarded-For`` only when the peer is a trusted
proxy, ``--forwarded-allow-ips``; the application itself never reads that header.)
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from telemed.app import create_app
from telemed.settings import Settings

# The exact values served (telemed/web/middleware.py); a change here is a security decision.
EXPECTED_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    "permissions-policy": "geolocation=()",
}


@pytest.fixture
def failing_client(settings: Settings, engine: Engine, db: Session) -> TestClient:
    """The real application with two routes that fail unexpectedly, to see the 500 answers
    (which Starlette sends from outside every middleware of ours)."""
    app = create_app(settings, engine)

    def fail() -> None:
        raise RuntimeError("an unexpected failure")

    app.add_api_route("/failing-page", fail)
    app.add_api_route("/api/v1/failing", fail)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        ("/login", 200, "text/html"),  # a page
        ("/no-such-page", 404, "text/html"),  # an error page
        ("/failing-page", 500, "text/html"),
        ("/api/v1/auth/me", 401, "application/json"),  # JSON, refused
        ("/api/v1/no-such-thing", 404, "application/json"),
        ("/api/v1/failing", 500, "application/json"),
        ("/healthz", 200, "application/json"),
    ],
)
def test_security_headers_on_pages_error_pages_and_json(
    failing_client: TestClient, path: str, status: int, content_type: str
) -> None:
    response = failing_client.get(path, follow_redirects=False)
    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)
    served = {name: response.headers.get(name) for name in EXPECTED_HEADERS}
    assert served == EXPECTED_HEADERS
