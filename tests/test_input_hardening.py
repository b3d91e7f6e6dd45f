"""Input that once gave a 500 (issue 13, item 3) and the headers of item 7: control
characters in any field, ids past the column's range, dates past any sane year, zones that
are not places, bodies of any size, and what a 500 and a page say in their headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, select

from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.settings import Environment, Settings
from telemed.validation import canonical_zones
from tests.conftest import LoginFn
from tests.helpers import PASSWORD, ManualClock, Users, consult_payload

PAST_INT32 = 2**31
PAST_INT64 = 2**63


def _field_error(response: object, field: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    fields = [f["field"] for f in response.json()["error"]["fields"]]  # type: ignore[attr-defined]
    assert field in fields, fields


def test_a_nul_is_refused_naming_the_field_before_login(client: TestClient) -> None:
    """The login and registration forms are open to anyone: JSON and form alike."""
    answer = client.post(
        "/api/v1/auth/login", json={"email": "a\x00@example.org", "password": "x" * 10}
    )
    _field_error(answer, "email")
    assert "U+0000" in answer.json()["error"]["message"]
    page = client.post("/specialists/register", data={"full_name": "Dr\x00 Who"})
    assert page.status_code == 422
    assert "full_name" in page.text
    # A lone surrogate (JSON can spell one; no database can store it) and C1/C0 controls.
    for text in ("\\ud800", "a\\u0085b", "\\u001b[31m"):
        raw = '{"email": "' + text + '", "password": "x"}'
        _field_error(
            client.post(
                "/api/v1/auth/login", content=raw, headers={"content-type": "application/json"}
            ),
            "email",
        )
    # In the query, and in keys.
    page = client.get("/login", params={"next": "/\x00"})
    assert page.status_code == 422
    assert "next" in page.text
    _field_error(client.post("/api/v1/auth/login", json={"e\x01": 1}), "e\x01")


def test_control_characters_are_refused_in_every_kind_of_field(
    users: Users, login: LoginFn, db: Session
) -> None:
    nurse = login(users.make(Role.clinician))
    _field_error(nurse.post("/api/v1/consults", consult_payload(question="Fever\x00")), "question")
    _field_error(
        nurse.post(
            "/api/v1/consults",
            consult_payload(case={"patient_ref": "A\x07", "age_years": 4, "sex": "female"}),
        ),
        "case.patient_ref",
    )
    created = nurse.post("/api/v1/consults", consult_payload(history="line 1\r\n\tline 2"))
    assert created.status_code == 201, created.text  # tab and line breaks are text
    consult_id = created.json()["id"]
    _field_error(nurse.post(f"/api/v1/consults/{consult_id}/messages", {"body": "hi\x00"}), "body")
    upload = nurse.client.post(
        f"/consults/{consult_id}/attachments",
        data={"csrf_token": nurse.csrf},
        files={"file": ("a\x00b.jpg", b"\xff\xd8\xff", "image/jpeg")},
    )
    assert upload.status_code == 422
    assert "file" in upload.text


@pytest.mark.parametrize("big", [PAST_INT32, PAST_INT64, 10**30])
def test_ids_past_the_column_are_refused_not_500(users: Users, login: LoginFn, big: int) -> None:
    coordinator = login(users.make(Role.coordinator))
    for path in (
        f"/api/v1/consults/{big}",
        f"/api/v1/attachments/{big}",
        f"/api/v1/notes/{big}",
        f"/consults/{big}",
    ):
        answer = coordinator.get(path)
        assert answer.status_code in (404, 422), (path, answer.status_code)
    _field_error(coordinator.get(f"/api/v1/consults/{big}"), "consult_id")
    assert coordinator.get(f"/fhir/ServiceRequest/{big}/$everything").status_code in (400, 404)
    _field_error(coordinator.post(f"/api/v1/notifications/{big}/read"), "notification_id")


def test_dates_outside_the_window_are_refused(users: Users, login: LoginFn) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    for when in ("9999-12-31T23:45:00Z", "9999-12-31T23:45:00+14:00", "0001-01-01T00:00:00-12:00"):
        _field_error(
            nurse.post(f"/api/v1/consults/{consult_id}/appointment", {"starts_at": when}),
            "starts_at",
        )


def test_zones_must_be_places() -> None:
    zones = canonical_zones()
    assert "Africa/Maseru" in zones
    assert "UTC" in zones
    for odd in ("localtime", "posixrules", "Factory", "posix/Africa/Maseru", "EST5EDT"):
        assert odd not in zones


def test_names_and_zones_are_checked_where_people_are_made(
    users: Users, login: LoginFn, db: Session
) -> None:
    admin = login(users.make(Role.admin))
    person = {"email": "x@example.org", "full_name": "Dr Alice", "role": "specialist"}
    for field, bad in (
        ("full_name", "Dr \u202eecilA"),  # displays as "Dr Alice" backwards
        ("full_name", "Dr\nAlice"),
        ("timezone", "localtime"),
        ("timezone", "posixrules"),
        ("timezone", "Factory"),
    ):
        answer = admin.post("/api/v1/users", {**person, field: bad, "password": PASSWORD})
        _field_error(answer, field)
    assert db.exec(select(User).where(User.email == "x@example.org")).first() is None


def test_a_large_anonymous_body_is_refused_before_it_is_read(client: TestClient) -> None:
    """413 from the Content-Length alone, and from the bytes as they arrive."""

    def endless() -> object:
        yield b'{"email": "'
        for _ in range(64):
            yield b"a" * 65536  # 4 MiB in all, past the 1 MiB limit

    answer = client.post(
        "/api/v1/auth/login", content=endless(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    declared = client.post(
        "/api/v1/auth/login",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": str(256 * 2**20)},
    )
    assert declared.status_code == 413


def test_pages_and_json_are_not_stored_static_files_may_be(
    client: TestClient, users: Users, login: LoginFn
) -> None:
    nurse = login(users.make(Role.clinician))
    for path in ("/", "/api/v1/consults", "/notifications"):
        assert nurse.get(path).headers["cache-control"] == "no-store", path
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")
    assert "strict-transport-security" not in client.get("/login").headers


def _broken_app(settings: Settings, engine: Engine, production: bool) -> FastAPI:
    if production:
        settings = settings.model_copy(
            update={"env": Environment.production, "secret_key": "s" * 40}
        )
    app = create_app(settings, engine, ManualClock())

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    return app


def test_a_500_closes_the_connection_and_has_the_headers(
    settings: Settings, engine: Engine
) -> None:
    with TestClient(
        _broken_app(settings, engine, production=True),
        raise_server_exceptions=False,
        base_url="https://testserver",
    ) as client:
        answer = client.get("/api/v1/boom")
        assert answer.status_code == 500
        assert answer.headers["connection"] == "close"
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["strict-transport-security"].startswith("max-age=")
        # Production: HSTS everywhere, no API map, the login cookie only over TLS.
        assert "max-age" in client.get("/login").headers["strict-transport-security"]
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
        cookie = client.get("/login").headers["set-cookie"]
        assert "telemed_login_csrf=" in cookie
        assert "Secure" in cookie


def test_login_then_a_nul_in_a_form_page_gives_a_page_naming_it(
    users: Users, login: LoginFn
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    page = nurse.client.post(
        f"/consults/{consult_id}/messages",
        data={"csrf_token": nurse.csrf, "body": "a\x00"},
    )
    assert page.status_code == 422
    assert "body" in page.text


def test_now_is_in_the_window() -> None:
    """The window moves with nobody: a booking made today must be inside it."""
    from telemed.validation import moment_problem

    assert moment_problem(datetime.now(UTC)) is None
