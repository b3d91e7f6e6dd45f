"""From a newcomer's registration to an accepted appointment, with the e-mails and their
calendar invitation received by a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import icalendar
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment
from telemed.db import utcnow
from telemed.notifications.service import deliver_due
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.helpers import PASSWORD, Users, consult_payload
from tests.notification_helpers import SmtpServer, delivery_settings

NEWCOMER = "lerato@example.org"


def register_newcomer(client: TestClient) -> None:
    body = {
        "email": NEWCOMER,
        "full_name": "Dr Lerato Mahase",
        "password": PASSWORD,
        "specialties": ["paediatrics"],
        "languages": ["st", "en"],
        "country": "gb",
        "time_zone": "Europe/London",
        "registration_body": "GMC",
        "registration_number": "7054321",
        "registration_expires_on": (utcnow().date() + timedelta(days=300)).isoformat(),
        "bio": "Paediatrician, Manchester.",
    }
    registered = client.post("/api/v1/specialists/register", json=body)
    assert registered.status_code == 201, registered.text


def to(messages: list[EmailMessage], address: str) -> list[EmailMessage]:
    return [m for m in messages if address in str(m["To"])]


def invitation(message: EmailMessage) -> icalendar.Calendar:
    [part] = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return icalendar.Calendar.from_ical(payload)


def test_request_to_accepted_appointment_with_emails_and_invitation(
    units: Units,
    client: TestClient,
    db: Session,
    settings: Settings,
    users: Users,
    login: LoginFn,
    smtp_server: SmtpServer,
) -> None:
    mail = delivery_settings(settings, smtp=smtp_server)
    register_newcomer(client)
    db.rollback()
    newcomer = db.exec(select(User).where(User.email == NEWCOMER)).one()
    coordinator = login(users.make(Role.coordinator))
    verified = coordinator.post(
        f"/api/v1/specialists/{newcomer.id}/verify", {"note": "GMC online register checked"}
    )
    assert verified.status_code == 200, verified.text
    specialist = login(newcomer)
    every_day = [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]
    put = specialist.client.put(
        "/api/v1/specialists/me/availability",
        json={"weekly": every_day},
        headers={"X-CSRF-Token": specialist.csrf},
    )
    assert put.status_code == 200, put.text

    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload(mode="video")).json()["id"]
    [offer] = specialist.get("/api/v1/offers").json()
    assert offer["consult_id"] == consult_id
    deliver_due(units, mail, utcnow())
    # The newcomer's mail: "you are verified" (tests/test_onboarding.py), then the offer.
    [offer_mail] = [
        m
        for m in to(smtp_server.messages, NEWCOMER)
        if f"consult {consult_id}" in str(m["Subject"])
    ]
    assert "Fever and rash" not in offer_mail.get_content()  # no patient text by e-mail

    accepted = specialist.post(f"/api/v1/offers/{offer['id']}/accept")
    assert accepted.status_code == 200, accepted.text
    db.rollback()
    appointment = db.exec(select(Appointment).where(Appointment.consult_id == consult_id)).one()
    report = deliver_due(units, mail, utcnow())
    assert not report.failed
    assert not report.retrying

    for address in (NEWCOMER, nurse.user.email):
        [booked] = [m for m in to(smtp_server.messages, address) if "booked" in m["Subject"]]
        calendar = invitation(booked)
        assert str(calendar["METHOD"]) == "REQUEST"
        [event] = calendar.walk("VEVENT")
        assert str(event["UID"]) == appointment.uid
        assert int(event["SEQUENCE"]) == 0
        assert event.decoded("DTSTART") == appointment.starts_at
        assert "Fever" not in str(event.get("SUMMARY"))

    # Both sides see it: the specialist in London time, the clinician in Maseru time.
    london = appointment.starts_at.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")
    maseru = appointment.starts_at.astimezone(ZoneInfo("Africa/Maseru")).strftime("%H:%M")
    assert london in specialist.client.get("/schedule").text
    assert maseru in nurse.client.get(f"/consults/{consult_id}").text
    assert newcomer.full_name in nurse.client.get(f"/consults/{consult_id}").text
