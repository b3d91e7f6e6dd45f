"""How long a session works: its expiry (``session_hours``), and the per-process session
cache (``session_cache_seconds``), which must neither outlive a session's expiry nor keep a
session revoked in another process alive for longer than its documented bound.

Time is moved, never waited for: the database's view of time by moving the session row's
``expires_at`` back, the cache's by its injected monotonic clock (:class:`MonotonicClock`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User, UserSession
from telemed.accounts.security import token_digest
from telemed.accounts.session_cache import SessionCache
from telemed.app import create_app
from telemed.db import utcnow
from telemed.deps import SESSION_COOKIE
from telemed.settings import Settings
from tests.helpers import PASSWORD, ApiClient, MonotonicClock, Users


def app_with_clock(settings: Settings, engine: Engine, clock: MonotonicClock) -> FastAPI:
    """The real application, one "process", whose session cache runs on ``clock``."""
    app = create_app(settings, engine)
    app.state.session_cache = SessionCache(settings.session_cache_seconds, clock=clock)
    return app


def set_expiry(db: Session, token: str, expires_at: datetime) -> None:
    """Set the session's expiry: moving it back is the same as that much time passing."""
    db.rollback()
    db.execute(
        update(UserSession)
        .where(col(UserSession.id) == token_digest(token))
        .values(expires_at=expires_at)
    )
    db.commit()


def assert_refused(client: TestClient) -> None:
    """Both faces refuse the session: the JSON API with 401, a page with the login page."""
    api = client.get("/api/v1/auth/me")
    assert api.status_code == 401, api.text
    assert api.json()["error"]["code"] == "not_authenticated"
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=/"


def assert_accepted(client: TestClient, user: User) -> None:
    api = client.get("/api/v1/auth/me")
    assert api.status_code == 200, api.text
    assert api.json()["user"]["id"] == user.id
    assert client.get("/", follow_redirects=False).status_code == 200


def test_a_session_lasts_session_hours_and_is_refused_once_expired(
    settings: Settings, engine: Engine, users: Users, db: Session
) -> None:
    """The lifetime comes from the setting, for the row and the cookie alike; past it, the
    session is refused. The cache is off here, so the database decides alone."""
    settings = settings.model_copy(update={"session_hours": 2, "session_cache_seconds": 0})
    user = users.make(Role.clinician)
    client = TestClient(create_app(settings, engine))
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert f"Max-Age={2 * 3600}" in login.headers["set-cookie"]
    token = client.cookies[SESSION_COOKIE]
    row = db.exec(select(UserSession).where(UserSession.id == token_digest(token))).one()
    lifetime = row.expires_at - row.created_at
    assert abs(lifetime - timedelta(hours=2)) < timedelta(seconds=1)
    assert_accepted(client, user)

    set_expiry(db, token, row.expires_at - timedelta(hours=2))  # two hours pass
    assert_refused(client)


def test_a_remembered_session_does_not_outlive_its_expiry(
    settings: Settings, engine: Engine, users: Users, db: Session
) -> None:
    """The cache would remember a session for an hour here; the session has one minute
    left, so the cache keeps it one minute at most, not an hour."""
    settings = settings.model_copy(update={"session_cache_seconds": 3600})
    clock = MonotonicClock()
    user = users.make(Role.clinician)
    client = TestClient(app_with_clock(settings, engine, clock))
    ApiClient(client, user)
    token = client.cookies[SESSION_COOKIE]
    set_expiry(db, token, utcnow() + timedelta(minutes=1))  # one minute left
    assert_accepted(client, user)  # resolved from the database and remembered

    # 59 seconds pass: the session is still live. The database is made to say "expired"
    # already, so an answer other than 401 can only come from the cache.
    set_expiry(db, token, utcnow() - timedelta(seconds=1))
    clock.advance(59)
    assert_accepted(client, user)
    clock.advance(2)  # the minute is over
    assert_refused(client)


@pytest.mark.parametrize("end", ["logout", "deactivation"])
def test_a_session_ended_in_another_process_stops_within_the_cache_lifetime(
    end: str, settings: Settings, engine: Engine, users: Users, db: Session
) -> None:
    """Two applications on one database are two server processes, each with its own cache.
    A logout (or a deactivation) through A ends the session in A at once; B, which
    remembered it, refuses it at most ``session_cache_seconds`` later: the documented price
    of the cache (telemed/accounts/session_cache.py, README "The telemed command")."""
    ttl = settings.session_cache_seconds
    assert ttl > 1
    clock = MonotonicClock()
    app_a = create_app(settings, engine)
    app_b = app_with_clock(settings, engine, clock)
    user = users.make(Role.clinician)
    in_a = ApiClient(TestClient(app_a), user)
    in_b = TestClient(app_b, cookies={SESSION_COOKIE: in_a.client.cookies[SESSION_COOKIE]})
    assert_accepted(in_a.client, user)
    assert_accepted(in_b, user)  # B remembers it from now on

    if end == "logout":
        assert in_a.post("/api/v1/auth/logout").status_code == 204
        in_a.client.cookies.set(SESSION_COOKIE, in_b.cookies[SESSION_COOKIE])  # a kept copy
    else:
        admin = ApiClient(TestClient(app_a), users.make(Role.admin))
        assert admin.post(f"/api/v1/users/{user.id}/deactivate").status_code == 200
    assert_refused(in_a.client)

    clock.advance(ttl - 1)
    assert_accepted(in_b, user)  # still within the bound: B has not asked the database
    clock.advance(1)
    assert_refused(in_b)


def test_without_the_cache_another_process_refuses_at_once(
    settings: Settings, engine: Engine, users: Users
) -> None:
    """``session_cache_seconds=0`` turns the cache off: a logout is seen everywhere on the
    next request, with no clock to move."""
    settings = settings.model_copy(update={"session_cache_seconds": 0})
    user = users.make(Role.specialist)
    in_a = ApiClient(TestClient(create_app(settings, engine)), user)
    in_b = TestClient(
        create_app(settings, engine), cookies={SESSION_COOKIE: in_a.client.cookies[SESSION_COOKIE]}
    )
    assert_accepted(in_b, user)
    assert in_a.post("/api/v1/auth/logout").status_code == 204
    assert_refused(in_b)
