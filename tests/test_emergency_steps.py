"""Emergencies that move (issue 15, item 4): the requesting clinician hears of each step
(offered, accepted, escalated, assigned) in the app, by e-mail and by SMS; the coordinators
hear of an emergency when its first offers go out, by SMS as well as e-mail; an emergency
whose specialty has no verified specialist goes to the coordinators at once, by SMS as
well as e-mail, and their escalation page suggests related specialties and whoever is on
call now. Delivered through the real outbox to aiosmtpd and the SMS gateway."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.notifications.models import Notification
from telemed.notifications.service import deliver_due
from telemed.offers.models import OfferStatus
from telemed.offers.related import related_to
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.notification_helpers import SmsGateway, SmtpServer, delivery_settings
from tests.test_appointments import state_of

MONDAY = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # 10:00 in Maseru


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def with_phone(db: Session, user: User, phone: str) -> User:
    user.phone = phone
    db.add(user)
    db.commit()
    db.refresh(user)
    return user


def kinds_for(db: Session, user: User) -> list[str]:
    db.rollback()
    rows = db.exec(
        select(Notification).where(Notification.user_id == user.id).order_by(col(Notification.id))
    )
    return [n.kind for n in rows]


def sms_to(gateway: SmsGateway, phone: str) -> list[str]:
    return [str(r.json["message"]) for r in gateway.requests if r.json["to"] == phone]


def mail_to(smtp: SmtpServer, email: str) -> list[str]:
    return [str(m["Subject"]) for m in smtp.messages if m["To"] == email]


def emergency(nurse: ApiClient, **payload: object) -> int:
    made = nurse.post("/api/v1/consults", consult_payload(urgency="emergency", **payload))
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def test_the_clinician_hears_an_emergency_offered_and_accepted_by_sms_and_email(
    specialists: Specialists,
    users: Users,
    login: LoginFn,
    db: Session,
    clock: ManualClock,
    units: Units,
    settings: Settings,
    smtp_server: SmtpServer,
    sms_gateway: SmsGateway,
) -> None:
    clock.set(MONDAY)
    doctor = login(specialists.make())
    coordinator = with_phone(db, specialists.coordinator, "+26658000009")
    nurse_user = with_phone(db, users.make(Role.clinician), "+26658000001")
    nurse = login(nurse_user)
    consult_id = emergency(nurse)
    [offer] = [o for o in offers_of(db, consult_id) if o.status == OfferStatus.open]
    assert kinds_for(db, nurse_user) == ["emergency_offered"]
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    assert "emergency_accepted" in kinds_for(db, nurse_user)

    deliver_due(units, delivery_settings(settings, smtp=smtp_server, sms=sms_gateway), MONDAY)
    texts = sms_to(sms_gateway, "+26658000001")
    assert f"Telemed: emergency consult {consult_id} offered to 1 specialist(s)." in texts
    assert (
        f"Telemed: emergency consult {consult_id} accepted by {doctor.user.full_name}. "
        "Open the call." in texts
    )
    # The coordinators hear of it in the first deliveries run (every 15 s), not once the
    # offers have run out.
    assert sms_to(sms_gateway, "+26658000009") == [
        f"Telemed: emergency consult {consult_id} requested, offered to 1 specialist(s)."
    ]
    assert f"Emergency: emergency paediatrics consult {consult_id}" in mail_to(
        smtp_server, coordinator.email
    )
    subjects = mail_to(smtp_server, nurse_user.email)
    assert f"Consult {consult_id} offered to 1 specialist(s)" in subjects
    assert f"Consult {consult_id} accepted by {doctor.user.full_name}" in subjects


def test_an_emergency_of_a_specialty_nobody_holds_goes_to_the_coordinators_at_once(
    specialists: Specialists,
    users: Users,
    login: LoginFn,
    db: Session,
    clock: ManualClock,
    units: Units,
    settings: Settings,
    smtp_server: SmtpServer,
    sms_gateway: SmsGateway,
) -> None:
    clock.set(MONDAY)
    assert related_to("obstetrics_gynaecology")[0] == "general_surgery"
    surgeon = specialists.make(specialty="general_surgery")
    on_call = login(specialists.make(specialty="paediatrics"))
    whole_monday = {"specialty": "paediatrics", "weekday": 0, "start": "00:00", "end": "00:00"}
    assert on_call.post("/api/v1/oncall/blocks", whole_monday).status_code == 201
    coordinator = with_phone(db, specialists.coordinator, "+26658000009")
    nurse_user = with_phone(db, users.make(Role.clinician), "+26658000001")
    nurse = login(nurse_user)

    consult_id = emergency(nurse, specialty="obstetrics_gynaecology")
    # At once, in the request itself: no waiting for the offers' timer.
    assert state_of(db, consult_id) == "escalated"
    assert "escalated" in kinds_for(db, coordinator)
    assert kinds_for(db, nurse_user) == ["emergency_escalated"]
    # Their consult page says so, not only "escalated · waiting".
    said = '<p id="next-step"><strong>No specialist has taken it yet; a coordinator is finding'
    assert said in nurse.get(f"/consults/{consult_id}").text

    deliver_due(units, delivery_settings(settings, smtp=smtp_server, sms=sms_gateway), MONDAY)
    assert sms_to(sms_gateway, "+26658000009") == [
        f"Telemed: emergency consult {consult_id} escalated, assign a specialist."
    ]
    assert any(str(consult_id) in s for s in mail_to(smtp_server, coordinator.email))
    [told] = sms_to(sms_gateway, "+26658000001")
    assert f"emergency consult {consult_id}" in told
    assert "a coordinator is finding one" in told
    assert mail_to(smtp_server, nurse_user.email) == [
        f"Consult {consult_id} escalated to a coordinator"
    ]

    desk = login(coordinator)
    page = desk.get("/coordinator/escalations")
    assert page.status_code == 200
    assert f'id="no-specialty-{consult_id}"' in page.text
    assert "Suggested instead" in page.text
    assert f'<option value="{surgeon.id}">{surgeon.full_name}' in page.text
    assert 'label="general surgery"' in page.text
    assert f'<span class="oncall-now">{on_call.user.full_name} (paediatrics)</span>' in page.text

    clock.advance(timedelta(minutes=1))
    assigned = desk.client.post(
        f"/coordinator/escalations/{consult_id}/assign",
        data={"specialist_id": str(surgeon.id), "reason": "surgeon", "csrf_token": desk.csrf},
        follow_redirects=False,
    )
    assert assigned.status_code == 303, assigned.text
    assert kinds_for(db, nurse_user)[-1] == "emergency_assigned"
    deliver_due(
        units,
        delivery_settings(settings, smtp=smtp_server, sms=sms_gateway),
        MONDAY + timedelta(minutes=1),
    )
    assert f"Telemed: emergency consult {consult_id} assigned to {surgeon.full_name}." in sms_to(
        sms_gateway, "+26658000001"
    )
