"""Helpers for tests: users made through the real service, logged-in API clients."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.settings import Settings

PASSWORD = "correct horse battery"


def env_without_settings() -> dict[str, str]:
    """This process's environment for a child ``telemed`` process, without the ``TELEMED_*``
    settings (the child gets its own), but with the test run's clock (``TELEMED_TEST_*``,
    see tests/timetravel)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TELEMED_") or k.startswith("TELEMED_TEST_")
    }


class ManualClock:
    """The application's clock in tests (``telemed.clock.Clock``): the real time until a
    test pins it with ``set``, then exactly what the test says, moved only by ``advance``.
    The ``client`` and ``login`` fixtures build the app on it, so a test that works at a
    fixed date gets that date from every view and endpoint too."""

    def __init__(self) -> None:
        self._at: datetime | None = None

    def now(self) -> datetime:
        return self._at if self._at is not None else datetime.now(UTC)

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("ManualClock.set needs an aware datetime")
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at = self.now() + delta

    def set_midday(self) -> datetime:
        """Pin to 12:00 UTC today (14:00 in Maseru, 12:00 or 13:00 in London): the same
        date in every zone the tests use, whatever the hour of the run."""
        self.set(datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0))
        return self.now()


class MonotonicClock:
    """A monotonic clock moved by the test (signalling server, session cache): time passes
    without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Users:
    """Creates users through the accounts service, the way `telemed users create` does
    (committed: the test's session owns its unit of work, as the command line does)."""

    def __init__(self, db: Session, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.count = 0

    def make(self, role: Role, facility: str | None = None, timezone: str | None = None) -> User:
        self.count += 1
        if role is Role.clinician and facility is None:
            facility = "MOTEBANG"
        user = accounts.create_user(
            self.db,
            self.settings,
            email=f"{role.value}{self.count}@example.org",
            full_name=f"{role.value.title()} {self.count}",
            role=role,
            password=PASSWORD,
            facility_code=facility,
            timezone=timezone,
        )
        self.db.commit()
        return user


class ApiClient:
    """A logged-in API session: the cookie lives in the client, the CSRF token here."""

    def __init__(self, client: TestClient, user: User) -> None:
        self.client = client
        self.user = user
        response = client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]

    def get(self, url: str, params: dict[str, object] | None = None) -> httpx.Response:
        return self.client.get(url, params=params)  # type: ignore[arg-type]

    def post(
        self, url: str, json: object = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.client.post(
            url, json=json, headers={"X-CSRF-Token": self.csrf, **(headers or {})}
        )

    def patch(self, url: str, json: object = None) -> httpx.Response:
        return self.client.patch(url, json=json, headers={"X-CSRF-Token": self.csrf})


#: The consent a consult request carries by default: the mother, verbally, to both.
CONSENT_AT_REQUEST: dict[str, object] = {
    "sharing": True,
    "call": True,
    "consenter": "guardian",
    "guardian_name": "'Mamosa",
    "guardian_relationship": "mother",
    "method": "verbal",
}


def consult_payload(**overrides: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "case": {"patient_ref": "MOT-1", "age_years": 4, "sex": "female"},
        "specialty": "paediatrics",
        "urgency": "urgent",
        "mode": "video",
        "language": "st",
        "question": "Fever and rash for five days: Kawasaki disease?",
        "history": "Fever 39 °C since Monday.",
        "vitals": {"pulse_bpm": 140, "temperature_c": 39.2, "spo2_percent": 97},
        # Recorded explicitly, so every test's consult goes through the real consent rule:
        # without it no offer is made and no call starts (tests/test_consent.py).
        "consent": CONSENT_AT_REQUEST,
    }
    payload.update(overrides)
    if payload["consent"] is None:  # consult_payload(consent=None): a request without it
        del payload["consent"]
    return payload
