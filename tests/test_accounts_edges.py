"""Edges around logging in and every response: the per-address login throttle, and the
security headers on pages, error pages and JSON.

The client address is the TCP peer's (``request.client.host``, the same for the throttle and
for audit rows); the TestClient sets it with ``client=(host, port)``. Behind nginx, uvicorn
takes it from ``X-Forwarded-For`` only when the peer is a trusted proxy
(``--forwarded-allow-ips``); the application itself never reads that header.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import LoginAttempt, Role
from telemed.app import create_app
from telemed.settings import Settings
from tests.helpers import PASSWORD, Users

LOCKED = "203.0.113.7"
ELSEWHERE = "198.51.100.9"


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> int:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    return response.status_code


def test_failures_from_one_address_across_accounts_lock_that_address_only(
    settings: Settings, engine: Engine, users: Users, db: Session
) -> None:
    """Four failures, one on each of four accounts (far below the five allowed per e-mail),
    lock the address at the per-address limit of four; the accounts themselves are not
    locked, and another address logs in to the same accounts as before."""
    settings = settings.model_copy(
        update={"login_max_failures": 5, "login_max_failures_per_address": 4}
    )
    app = create_app(settings, engine)
    attacker = TestClient(app, client=(LOCKED, 40000))
    accounts = [users.make(Role.clinician) for _ in range(5)]

    for account in accounts[:3]:
        assert log_in(attacker, account.email, "guessed wrong") == 401
    assert log_in(attacker, accounts[4].email) == 200  # three failures: not locked yet
    assert log_in(attacker, accounts[3].email, "guessed wrong") == 401  # the fourth

    blocked = attacker.post(
        "/api/v1/auth/login", json={"email": accounts[4].email, "password": PASSWORD}
    )
    assert blocked.status_code == 429  # even with the right password
    assert blocked.json()["error"]["message"] == (
        "Too many failed logins; try again in 15 minutes."
    )
    assert blocked.headers["retry-after"] == str(15 * 60)
    # A forwarded-for header from an ordinary client is not believed.
    spoofed = attacker.post(
        "/api/v1/auth/login",
        json={"email": accounts[4].email, "password": PASSWORD},
        headers={"X-Forwarded-For": ELSEWHERE},
    )
    assert spoofed.status_code == 429
    csrf = attacker.get("/login").cookies["telemed_login_csrf"]
    page = attacker.post(
        "/login",
        data={"email": accounts[4].email, "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert page.status_code == 429
    assert "Too many failed logins" in page.text

    colleague = TestClient(app, client=(ELSEWHERE, 40001))
    for account in accounts:
        assert log_in(colleague, account.email) == 200
    db.rollback()
    addresses = {a.client_address for a in db.exec(select(LoginAttempt))}
    assert addresses == {LOCKED, ELSEWHERE}


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
