"""Accounts: Argon2 hashing, session cookie, CSRF, authorization by role (throttling:
tests/test_login_throttle.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import Role, UserSession
from telemed.accounts.security import needs_rehash, token_digest
from telemed.app import create_app
from telemed.settings import Environment, Settings
from tests.conftest import LoginFn
from tests.helpers import PASSWORD, ManualClock, Users


def test_password_is_stored_as_argon2id(users: Users) -> None:
    user = users.make(Role.specialist)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


def test_a_light_hash_is_rehashed_at_the_standard_cost_at_login(
    settings: Settings, engine: Engine, db: Session, clock: ManualClock, users: Users
) -> None:
    """The suite hashes with Argon2id's cheapest parameters; a deployment at the standard
    cost that meets such a hash (a test database restored, say) upgrades it at the next
    login, and production refuses the light setting outright."""
    user = users.make(Role.clinician)
    assert "m=1024,t=1,p=1" in user.password_hash
    standard = settings.model_copy(update={"password_hashing": "standard"})
    with TestClient(create_app(standard, engine, clock), base_url="http://testserver") as app:
        login = app.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
        assert login.status_code == 200, login.text
    db.refresh(user)
    assert user.password_hash.startswith("$argon2id$")
    assert "m=1024,t=1,p=1" not in user.password_hash
    assert not needs_rehash(user.password_hash, "standard")
    with pytest.raises(ValidationError, match="TELEMED_PASSWORD_HASHING"):
        Settings(env=Environment.production, secret_key="x" * 40, password_hashing="light")


def test_login_sets_an_httponly_samesite_cookie_and_me_works(
    client: TestClient, users: Users
) -> None:
    user = users.make(Role.coordinator)
    response = client.post(
        "/api/v1/auth/login", json={"email": user.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "telemed_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200
    assert me.json()["user"]["email"] == user.email
    assert me.json()["csrf_token"] == response.json()["csrf_token"]


def test_only_the_digest_of_the_session_token_is_stored(
    client: TestClient, users: Users, db: Session
) -> None:
    user = users.make(Role.coordinator)
    client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    token = client.cookies["telemed_session"]
    stored = db.exec(select(UserSession)).one()
    assert stored.id == token_digest(token)
    assert stored.id != token


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: TestClient, users: Users
) -> None:
    user = users.make(Role.specialist)
    wrong = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "nope-nope-nope"}
    )
    unknown = client.post(
        "/api/v1/auth/login", json={"email": "ghost@example.org", "password": "x"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert client.get("/api/v1/auth/me").status_code == 401


def test_logout_revokes_the_session_server_side(client: TestClient, users: Users) -> None:
    user = users.make(Role.coordinator)
    csrf = client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    ).json()["csrf_token"]
    token = client.cookies["telemed_session"]
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("telemed_session", token)  # a stolen copy of the cookie
    assert client.get("/api/v1/auth/me").status_code == 401


def test_writes_without_the_csrf_token_are_refused(client: TestClient, users: Users) -> None:
    user = users.make(Role.clinician)
    client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    body = {
        "case": {"patient_ref": "A1", "age_years": 3, "sex": "male"},
        "specialty": "paediatrics",
        "urgency": "routine",
        "mode": "video",
        "language": "en",
        "question": "Is this croup?",
    }
    missing = client.post("/api/v1/consults", json=body)
    wrong = client.post("/api/v1/consults", json=body, headers={"X-CSRF-Token": "forged"})
    assert missing.status_code == wrong.status_code == 403
    assert "CSRF" in missing.json()["error"]["message"]
    form = client.post("/consults/new", data={"patient_ref": "A1"})
    assert form.status_code == 403
    assert client.get("/api/v1/consults").json()["items"] == []


def test_the_page_login_session_works_for_the_json_api(client: TestClient, users: Users) -> None:
    user = users.make(Role.clinician)
    page = client.get("/login")
    csrf = page.cookies["telemed_login_csrf"]
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf, "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert client.get("/api/v1/auth/me").json()["user"]["id"] == user.id


def test_login_form_without_its_csrf_token_is_refused(client: TestClient, users: Users) -> None:
    user = users.make(Role.clinician)
    client.get("/login")
    response = client.post(
        "/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "x"}
    )
    assert response.status_code == 403
    assert "form expired" in response.text
    assert client.get("/api/v1/auth/me").status_code == 401


def test_login_page_refuses_to_redirect_off_site(client: TestClient, users: Users) -> None:
    user = users.make(Role.clinician)
    csrf = client.get("/login").cookies["telemed_login_csrf"]
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": PASSWORD,
            "csrf_token": csrf,
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_pages_redirect_anonymous_users_to_login(client: TestClient) -> None:
    response = client.get("/consults/new", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/consults/new"


def test_admin_creates_users_and_others_cannot(login: LoginFn, users: Users) -> None:
    admin = login(users.make(Role.admin))
    created = admin.post(
        "/api/v1/users",
        json={
            "email": "new.specialist@example.org",
            "full_name": "Dr New",
            "role": "specialist",
            "timezone": "Europe/Dublin",
            "password": "a long enough password",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["timezone"] == "Europe/Dublin"
    duplicate = admin.post(
        "/api/v1/users",
        json={
            "email": "new.specialist@example.org",
            "full_name": "Dr New",
            "role": "specialist",
            "password": "a long enough password",
        },
    )
    assert duplicate.status_code == 409
    bad_zone = admin.post(
        "/api/v1/users",
        json={
            "email": "x@example.org",
            "full_name": "X",
            "role": "specialist",
            "timezone": "Mars/Olympus",
            "password": "a long enough password",
        },
    )
    assert bad_zone.status_code == 422
    assert bad_zone.json()["error"]["fields"][0]["field"] == "timezone"
    no_facility = admin.post(
        "/api/v1/users",
        json={
            "email": "c@example.org",
            "full_name": "C",
            "role": "clinician",
            "password": "a long enough password",
        },
    )
    assert no_facility.status_code == 422
    coordinator = login(users.make(Role.coordinator))
    assert coordinator.get("/api/v1/users").status_code == 403
