"""Helpers for tests: users made through the real service, logged-in API clients."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient
from sqlmodel import Session

from telemed.accounts import service as accounts
from telemed.accounts.models import Role, User
from telemed.settings import Settings

PASSWORD = "correct horse battery"


class ManualClock:
    """A monotonic clock moved by the test (signalling server, session cache): time passes
    without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Users:
    """Creates users through the accounts service, the way `telemed users create` does."""

    def __init__(self, db: Session, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.count = 0

    def make(self, role: Role, facility: str | None = None, timezone: str | None = None) -> User:
        self.count += 1
        if role is Role.clinician and facility is None:
            facility = "MOTEBANG"
        return accounts.create_user(
            self.db,
            self.settings,
            email=f"{role.value}{self.count}@example.org",
            full_name=f"{role.value.title()} {self.count}",
            role=role,
            password=PASSWORD,
            facility_code=facility,
            timezone=timezone,
        )


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

    def post(self, url: str, json: object = None) -> httpx.Response:
        return self.client.post(url, json=json, headers={"X-CSRF-Token": self.csrf})

    def patch(self, url: str, json: object = None) -> httpx.Response:
        return self.client.patch(url, json=json, headers={"X-CSRF-Token": self.csrf})


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
    }
    payload.update(overrides)
    return payload
