"""A specialist's registration (languages chosen, zone picker, phone, the page that says
what happens next, the e-mail once verified), every user's phone, and the admin's pages
for users and facilities (admin only, CSRF, audited, escaped, no deletes)."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.audit.models import AuditEntry
from telemed.db import utcnow
from telemed.facilities.models import District, Facility
from telemed.notifications.models import OutboxMessage
from tests.conftest import LoginFn
from tests.helpers import PASSWORD, Users
from tests.test_form_errors import _error_of


def _registration(**overrides: object) -> dict[str, object]:
    form: dict[str, object] = {
        "email": "palesa@example.org",
        "full_name": "Dr Palesa Nthako",
        "password": PASSWORD,
        "phone": "+266 5812-3456",
        "specialties": ["paediatrics"],
        "languages": ["en"],
        "country": "ZA",
        "time_zone": "Africa/Johannesburg",
        "registration_body": "HPCSA",
        "registration_number": "MP0123456",
        "registration_expires_on": (utcnow().date() + timedelta(days=300)).isoformat(),
    }
    form.update(overrides)
    return form


def test_registration_asks_languages_offers_zones_and_says_what_happens_next(
    client: TestClient, users: Users, login: LoginFn, db: Session
) -> None:
    page = client.get("/specialists/register")
    assert page.status_code == 200
    assert not re.search(r'name="languages" value="\w+" checked', page.text)
    assert 'list="time_zone-choices"' in page.text
    assert '<option value="America/New_York">New York · America</option>' in page.text
    assert re.search(r'<script src="/static/zone.js\?v=[0-9a-f]+" defer></script>', page.text)
    assert "resolvedOptions().timeZone" in client.get("/static/zone.js").text
    token = client.cookies["telemed_register_csrf"]

    none = client.post(
        "/specialists/register", data={**_registration(languages=[]), "csrf_token": token}
    )
    assert none.status_code == 422
    assert "Tick at least one language" in _error_of(none.text, "languages")
    bad_phone = client.post(
        "/specialists/register", data={**_registration(phone="58123456"), "csrf_token": token}
    )
    assert bad_phone.status_code == 422
    assert "+ and the country code" in _error_of(bad_phone.text, "phone")

    done = client.post(
        "/specialists/register",
        data={**_registration(), "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/specialists/registered"
    next_page = client.get("/specialists/registered")
    assert "What happens next" in next_page.text
    assert "You get an e-mail once it is verified" in next_page.text
    specialist = db.exec(select(User).where(User.email == "palesa@example.org")).one()
    assert specialist.phone == "+26658123456"

    coordinator = login(users.make(Role.coordinator))
    verified = coordinator.client.post(
        f"/coordinator/specialists/{specialist.id}/verify",
        data={"note": "HPCSA register checked online", "csrf_token": coordinator.csrf},
        follow_redirects=False,
    )
    assert verified.status_code == 303, verified.text
    db.rollback()
    mails = db.exec(
        select(OutboxMessage).where(OutboxMessage.recipient == "palesa@example.org")
    ).all()
    assert [m.subject for m in mails] == ["Your Telemed registration is verified"]


def test_every_user_keeps_a_phone_for_sms(users: Users, login: LoginFn, db: Session) -> None:
    nurse = users.make(Role.clinician)
    api = login(nurse)
    assert 'href="/account/phone"' in api.client.get("/account/phone").text
    bad = api.client.post("/account/phone", data={"phone": "call me", "csrf_token": api.csrf})
    assert bad.status_code == 422
    assert "e.g. +26658123456" in _error_of(bad.text, "phone")
    forged = api.client.post("/account/phone", data={"phone": "+26658000001"})
    assert forged.status_code == 403
    saved = api.client.post(
        "/account/phone", data={"phone": "+266 5800 0001", "csrf_token": api.csrf}
    )
    assert saved.status_code == 200  # followed to the page, which shows it
    assert 'value="+26658000001"' in saved.text
    db.rollback()  # a fresh read, past the app's commit
    stored = db.get(User, nurse.id, populate_existing=True)
    assert stored is not None
    assert stored.phone == "+26658000001"
    api.client.post("/account/phone", data={"phone": "", "csrf_token": api.csrf})
    db.rollback()  # a fresh read, past the app's commit
    stored = db.get(User, nurse.id, populate_existing=True)
    assert stored is not None
    assert stored.phone is None


def _audit(db: Session, object_type: str) -> list[tuple[str, str, str]]:
    db.rollback()
    rows = db.exec(
        select(AuditEntry).where(AuditEntry.object_type == object_type).order_by(col(AuditEntry.id))
    )
    return [(str(r.action), r.object_id, r.detail) for r in rows]


def test_the_admin_creates_and_deactivates_users_on_pages(
    users: Users, login: LoginFn, db: Session
) -> None:
    admin = login(users.make(Role.admin))
    coordinator = login(users.make(Role.coordinator))
    assert coordinator.client.get("/admin/users").status_code == 403
    listing = admin.client.get("/admin/users")
    assert listing.status_code == 200
    assert 'href="/admin/users"' in listing.text

    form = {
        "full_name": "<b>Nurse</b> Mpho",
        "email": "mpho@example.org",
        "role": "clinician",
        "facility_code": "MOTEBANG",
        "timezone": "Africa/Maseru",
        "phone": "+26658111222",
        "password": PASSWORD,
    }
    assert admin.client.post("/admin/users", data=form).status_code == 403  # no CSRF token
    refused = admin.client.post(
        "/admin/users", data={**form, "role": "wizard", "csrf_token": admin.csrf}
    )
    assert refused.status_code == 422
    assert _error_of(refused.text, "role") == "Choose one of the options for Role."
    created = admin.client.post(
        "/admin/users", data={**form, "csrf_token": admin.csrf}, follow_redirects=False
    )
    assert created.status_code == 303, created.text
    page = admin.client.get(created.headers["location"]).text
    assert "&lt;b&gt;Nurse&lt;/b&gt; Mpho" in page
    assert "<b>Nurse</b>" not in page
    twice = admin.client.post("/admin/users", data={**form, "csrf_token": admin.csrf})
    assert twice.status_code == 409
    assert "already exists" in _error_of(twice.text, "email")

    db.rollback()
    mpho = db.exec(select(User).where(User.email == "mpho@example.org")).one()
    assert mpho.phone == "+26658111222"
    assert mpho.facility_id is not None
    gone = admin.client.post(
        f"/admin/users/{mpho.id}/deactivate",
        data={"csrf_token": admin.csrf},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    db.rollback()  # a fresh read, past the app's commit
    kept = db.get(User, mpho.id, populate_existing=True)
    assert kept is not None
    assert kept.is_active is False  # deactivated, never deleted
    assert _audit(db, "user") == [
        ("create", str(mpho.id), "clinician"),
        ("update", str(mpho.id), "deactivated"),
    ]


def test_the_admin_lists_adds_and_edits_facilities(
    users: Users, login: LoginFn, db: Session
) -> None:
    admin = login(users.make(Role.admin))
    nurse = login(users.make(Role.clinician))
    assert nurse.client.get("/admin/facilities").status_code == 403
    district = db.exec(select(District)).first()
    assert district is not None
    listing = admin.client.get("/admin/facilities")
    assert "MOTEBANG" in listing.text
    form = {
        "code": "ha-lejone",
        "name": "Ha Lejone Health Centre",
        "kind": "health centre",
        "district_id": str(district.id),
        "csrf_token": admin.csrf,
    }
    blank = admin.client.post("/admin/facilities", data={**form, "name": ""})
    assert blank.status_code == 422
    assert _error_of(blank.text, "name") == "Fill in Name."
    added = admin.client.post("/admin/facilities", data=form, follow_redirects=False)
    assert added.status_code == 303, added.text
    db.rollback()
    facility = db.exec(select(Facility).where(Facility.code == "HA-LEJONE")).one()
    taken = admin.client.post(f"/admin/facilities/{facility.id}", data={**form, "code": "MOTEBANG"})
    assert taken.status_code == 409
    assert "exists already" in _error_of(taken.text, "code")
    edited = admin.client.post(
        f"/admin/facilities/{facility.id}",
        data={**form, "name": "Ha Lejone Clinic"},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    db.rollback()  # a fresh read, past the app's commit
    renamed = db.get(Facility, facility.id, populate_existing=True)
    assert renamed is not None
    assert renamed.name == "Ha Lejone Clinic"
    assert [a[0] for a in _audit(db, "facility")] == ["create", "update"]
