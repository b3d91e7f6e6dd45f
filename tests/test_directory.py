"""Specialist directory: self-registration, verification, availability and its expansion
to UTC slots across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from telemed.accounts.models import Role
from telemed.db import utcnow
from telemed.directory import service as directory
from telemed.directory.models import SpecialistProfile
from telemed.directory.schemas import WindowIn
from telemed.settings import Settings
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import PASSWORD, Users


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def registration(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "email": "thabo@example.org",
        "full_name": "Dr Thabo Mokoena",
        "password": PASSWORD,
        "specialties": ["paediatrics"],
        "sub_specialties": "neonatology",
        "languages": ["st", "en"],
        "country": "gb",
        "time_zone": "Europe/London",
        "registration_body": "GMC",
        "registration_number": "7012345",
        "registration_expires_on": (utcnow().date() + timedelta(days=200)).isoformat(),
        "bio": "Consultant paediatrician, Leeds.",
    }
    body.update(overrides)
    return body


def test_register_through_the_page_then_verified_by_a_coordinator(
    client: TestClient, users: Users, login: LoginFn
) -> None:
    page = client.get("/specialists/register")
    assert page.status_code == 200
    token = client.cookies["telemed_register_csrf"]
    form: dict[str, object] = {**registration(), "languages": ["st"]}
    forged = client.post("/specialists/register", data={**form, "csrf_token": "x"})
    assert forged.status_code == 403
    bad_zone = {**form, "time_zone": "Mars/Olympus", "csrf_token": token}
    refused = client.post("/specialists/register", data=bad_zone)
    assert refused.status_code == 422
    assert "unknown time zone" in refused.text
    done = client.post(
        "/specialists/register", data={**form, "csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303, done.text

    coordinator = login(users.make(Role.coordinator))
    queue = coordinator.get("/api/v1/specialists", params={"status": "pending"}).json()
    assert [p["email"] for p in queue] == ["thabo@example.org"]
    profile = queue[0]
    assert profile["eligible"] is False
    assert profile["country"] == "GB"
    assert profile["time_zone"] == "Europe/London"
    assert profile["languages"] == ["st"]
    assert "Dr Thabo Mokoena" in coordinator.client.get("/coordinator/specialists").text
    no_note = coordinator.post(f"/api/v1/specialists/{profile['user_id']}/verify", {"note": ""})
    assert no_note.status_code == 422
    verified = coordinator.post(
        f"/api/v1/specialists/{profile['user_id']}/verify",
        {"note": "GMC register checked online, licence to practise"},
    ).json()
    assert verified["status"] == "verified"
    assert verified["eligible"] is True
    assert verified["verified_by_id"] == coordinator.user.id
    assert verified["verified_at"] is not None
    rejected = coordinator.post(
        f"/api/v1/specialists/{profile['user_id']}/reject", {"reason": "number not found"}
    ).json()
    assert rejected["status"] == "rejected"
    assert rejected["eligible"] is False

    clinician = login(users.make(Role.clinician))
    assert clinician.get("/api/v1/specialists").status_code == 403


def test_registration_api_validates_and_throttles(client: TestClient) -> None:
    url = "/api/v1/specialists/register"
    zone = client.post(url, json=registration(time_zone="Europe/Atlantis"))
    assert zone.status_code == 422
    assert zone.json()["error"]["fields"][0]["field"] == "time_zone"
    specialty = client.post(url, json=registration(specialties=["astrology"]))
    assert specialty.json()["error"]["fields"][0]["field"] == "specialties"
    expired = client.post(url, json=registration(registration_expires_on="2020-01-01"))
    assert expired.json()["error"]["fields"][0]["field"] == "registration_expires_on"
    for n in range(5):
        ok = client.post(url, json=registration(email=f"v{n}@example.org"))
        assert ok.status_code == 201, ok.text
    throttled = client.post(url, json=registration(email="v9@example.org"))
    assert throttled.status_code == 429


def test_availability_api_refuses_bad_windows_naming_the_field(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make(verified=False))
    url = "/api/v1/specialists/me/availability"

    def field_of(body: dict[str, object]) -> str:
        response = api.client.put(url, json=body, headers={"X-CSRF-Token": api.csrf})
        assert response.status_code == 422, response.text
        return str(response.json()["error"]["fields"][0]["field"])

    overlap = [
        {"weekday": 0, "start": "09:00", "end": "12:00"},
        {"weekday": 0, "start": "11:00", "end": "13:00"},
    ]
    assert field_of({"weekly": overlap}) == "weekly"
    assert field_of({"weekly": [{"weekday": 2, "start": "12:00", "end": "09:00"}]}) == "weekly.0"
    assert field_of({"weekly": [{"weekday": 2, "start": "09:10", "end": "10:00"}]}) == "weekly"
    assert field_of({"weekly": [{"weekday": 2, "start": "25:00", "end": "26:00"}]}).startswith(
        "weekly.0"
    )
    leave = [{"first_day": "2026-04-10", "last_day": "2026-04-01"}]
    assert field_of({"leave": leave}) == "leave.0"
    profile = api.get("/api/v1/specialists/me").json()
    body = {k: profile[k] for k in ("specialties", "languages", "country", "bio")}
    body.update(
        registration_body=profile["registration_body"],
        registration_number=profile["registration_number"],
        registration_expires_on=profile["registration_expires_on"],
        sub_specialties="",
        time_zone="Nowhere/Special",
    )
    bad_zone = api.client.put(
        "/api/v1/specialists/me", json=body, headers={"X-CSRF-Token": api.csrf}
    )
    assert bad_zone.status_code == 422
    assert bad_zone.json()["error"]["fields"][0]["field"] == "time_zone"

    good = {
        "weekly": [{"weekday": 0, "start": "09:00", "end": "12:00"}],
        "extra": [{"day": "2026-04-04", "start": "18:00", "end": "20:00"}],
        "leave": [{"first_day": "2026-04-13", "last_day": "2026-04-17"}],
        "weekly_cap": 3,
        "away": False,
        "min_notice_minutes": 120,
    }
    saved = api.client.put(url, json=good, headers={"X-CSRF-Token": api.csrf})
    assert saved.status_code == 200, saved.text
    again = api.get(url).json()
    assert again["weekly_cap"] == 3
    assert again["min_notice_minutes"] == 120
    assert again["weekly"] == [{"weekday": 0, "start": "09:00:00", "end": "12:00:00"}]
    assert again["time_zone"] == "Africa/Johannesburg"


def test_availability_editor_page_without_javascript(
    specialists: Specialists, login: LoginFn
) -> None:
    api = login(specialists.make(time_zone="Europe/Dublin"))
    page = api.get("/specialists/availability")
    assert page.status_code == 200
    assert "Europe/Dublin" in page.text
    form = {
        "csrf_token": api.csrf,
        "day_0": "09:00-12:00, 11:00-13:00",
        "day_1": "",
        "leave": "",
        "extra": "",
        "weekly_cap": "",
        "min_notice_minutes": "0",
    }
    overlapping = api.client.post("/specialists/availability", data=form)
    assert overlapping.status_code == 422
    assert "overlap" in overlapping.text
    garbled = api.client.post("/specialists/availability", data={**form, "day_0": "nine to five"})
    assert garbled.status_code == 422
    assert "is not like 09:00-12:00" in garbled.text
    saved = api.client.post(
        "/specialists/availability",
        data={**form, "day_0": "09:00-12:00, 18:00-24:00", "extra": "2026-05-02 10:00-11:00"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    shown = api.get("/specialists/availability").text
    assert "09:00-12:00, 18:00-24:00" in shown
    assert "2026-05-02 10:00-11:00" in shown


@pytest.mark.parametrize(
    ("zone", "before", "after", "utc_before", "utc_after"),
    [
        # Europe/London: clocks go forward on Sunday 29 March 2026 (GMT -> BST).
        ("Europe/London", date(2026, 3, 23), date(2026, 3, 30), 9, 8),
        # Europe/Dublin: the same instant (GMT -> IST).
        ("Europe/Dublin", date(2026, 3, 23), date(2026, 3, 30), 9, 8),
        # America/Toronto: Sunday 8 March 2026 (EST -> EDT).
        ("America/Toronto", date(2026, 3, 2), date(2026, 3, 9), 14, 13),
        # America/Chicago: Sunday 8 March 2026 (CST -> CDT).
        ("America/Chicago", date(2026, 3, 2), date(2026, 3, 9), 15, 14),
        # London back to GMT on Sunday 25 October 2026.
        ("Europe/London", date(2026, 10, 19), date(2026, 10, 26), 8, 9),
        # No daylight saving.
        ("Africa/Johannesburg", date(2026, 3, 23), date(2026, 3, 30), 7, 7),
    ],
)
def test_monday_morning_window_expands_across_dst(
    specialists: Specialists,
    db: Session,
    settings: Settings,
    zone: str,
    before: date,
    after: date,
    utc_before: int,
    utc_after: int,
) -> None:
    user = specialists.make(
        time_zone=zone, windows=[WindowIn(weekday=0, start=time(9), end=time(12))]
    )
    now = datetime.combine(before - timedelta(days=1), time(12), tzinfo=UTC)
    slots = directory.upcoming_slots(db, settings, user, now, timedelta(days=10))
    starts = [s.start for s in slots]
    assert len(starts) == 12  # two Mondays, 3 hours each, 30-minute slots
    assert starts[0] == datetime.combine(before, time(utc_before), tzinfo=UTC)
    assert starts[6] == datetime.combine(after, time(utc_after), tzinfo=UTC)
    assert slots[5].end == datetime.combine(before, time(utc_before + 3), tzinfo=UTC)


def test_expiring_registrations_for_reverification(specialists: Specialists, db: Session) -> None:
    soon = specialists.make()
    specialists.make()
    profile = db.get(SpecialistProfile, soon.id)
    assert profile is not None
    profile.registration_expires_on = utcnow().date() + timedelta(days=20)
    db.add(profile)
    db.commit()
    found = directory.expiring_registrations(db, utcnow().date())
    assert [e.user_id for e in found] == [soon.id]
