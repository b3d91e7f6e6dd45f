"""Login throttling that cannot be turned on others (docs/login-policy.md): a delay per
account and address that doubles, an unlock link by e-mail, a per-address limit a clinic
behind one NAT address never meets, and an attacker elsewhere who cannot stop the owner.

Every test pins the application's clock (no sleeps): a delay is waited out with
``clock.advance``. The client address is the TCP peer's; the TestClient sets it with
``client=(host, port)``, and a forwarded-for header from an ordinary client is not believed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from telemed.accounts import throttle
from telemed.accounts.models import LoginAttempt, Role, User
from telemed.accounts.security import hash_password
from telemed.accounts.throttle import ThrottlePolicy
from telemed.app import create_app
from telemed.audit.models import AuditEntry
from telemed.notifications.models import OutboxMessage
from telemed.settings import Settings
from tests.helpers import PASSWORD, ManualClock, Users

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
OWNER = "198.51.100.9"
ATTACKER = "203.0.113.7"
PHONE = "192.0.2.44"  # the owner on a new device
CLINIC = "198.51.100.200"  # a clinic's NAT address
WRONG = "guessed wrong"

At = Callable[[str], TestClient]


def attempt(client: TestClient, email: str, password: str = PASSWORD) -> tuple[int, int | None]:
    """The status of one API login, and its Retry-After (seconds) if any."""
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    retry = response.headers.get("retry-after")
    return response.status_code, int(retry) if retry is not None else None


def fail_until(client: TestClient, clock: ManualClock, email: str, failures: int) -> None:
    """Make ``failures`` wrong attempts as fast as the throttle lets them through."""
    made = 0
    while made < failures:
        status, retry = attempt(client, email, WRONG)
        if status == 429:
            assert retry is not None
            clock.advance(timedelta(seconds=retry))
        else:
            assert status == 401
            made += 1


@pytest.fixture
def at(settings: Settings, engine: Engine, db: Session, clock: ManualClock) -> At:
    """``at(address)``: a client of one application (on the pinned clock) from that address."""
    clock.set(T0)
    app = create_app(settings, engine, clock)

    def client_at(address: str) -> TestClient:
        return TestClient(app, client=(address, 40000))

    return client_at


def test_the_delay_doubles_after_the_free_failures_up_to_the_cap() -> None:
    policy = ThrottlePolicy.from_settings(Settings(secret_key="x"))
    delays = [policy.delay(n).total_seconds() for n in range(16)]
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600]
    assert policy.per_address >= 300  # a clinic behind one address: hundreds an hour
    assert policy.delay(10**6) == timedelta(seconds=600)


def test_the_owners_typos_cost_a_doubling_delay_never_a_lock(
    at: At, users: Users, clock: ManualClock, db: Session
) -> None:
    owner = users.make(Role.clinician)
    client = at(OWNER)
    for _ in range(3):
        assert attempt(client, owner.email, WRONG) == (401, None)
    assert attempt(client, owner.email) == (429, 1)  # even the right password waits 1 s
    clock.advance(timedelta(seconds=1))
    assert attempt(client, owner.email, WRONG) == (401, None)
    status, retry = attempt(client, owner.email)
    assert (status, retry) == (429, 2)
    clock.advance(timedelta(seconds=2))
    assert attempt(client, owner.email) == (200, None)
    clock.advance(timedelta(seconds=1))
    # The success starts the count again: three free failures, then one second.
    for _ in range(3):
        assert attempt(client, owner.email, WRONG) == (401, None)
    assert attempt(client, owner.email, WRONG) == (429, 1)
    # A refused attempt checked no password and was not counted.
    db.rollback()
    failures = db.exec(
        select(LoginAttempt).where(
            LoginAttempt.email == owner.email, col(LoginAttempt.succeeded).is_(False)
        )
    ).all()
    assert len(failures) == 7


def test_an_attacker_elsewhere_cannot_stop_the_owner_and_a_new_device_unlocks_by_email(
    at: At, users: Users, clock: ManualClock, db: Session, settings: Settings
) -> None:
    owner = users.make(Role.clinician)
    at_work = at(OWNER)
    assert attempt(at_work, owner.email) == (200, None)  # the owner's usual address
    clock.advance(timedelta(seconds=1))

    attacker = at(ATTACKER)
    fail_until(attacker, clock, owner.email, settings.login_max_failures)
    # Past the account-wide mark the attacker's address waits for the failures to age out.
    assert attempt(attacker, owner.email, WRONG)[0] == 429
    # Spoofing the owner's address in a header does not help the attacker.
    spoofed = attacker.post(
        "/api/v1/auth/login",
        json={"email": owner.email, "password": WRONG},
        headers={"X-Forwarded-For": OWNER},
    )
    assert spoofed.status_code == 429

    # A new device is refused once the account is attacked from everywhere ...
    phone = at(PHONE)
    csrf = phone.get("/login").cookies["telemed_login_csrf"]
    page = phone.post(
        "/login",
        data={"email": owner.email, "password": PASSWORD, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert page.status_code == 429
    assert int(page.headers["retry-after"]) > 0
    assert "E-mail me an unlock link" in page.text

    # ... and its owner asks for a link from that page; none is sent twice a quarter hour.
    for _ in range(2):
        sent = phone.post("/login/unlock", data={"email": owner.email, "csrf_token": csrf})
        assert sent.status_code == 200
        assert "an unlock link is on its way" in sent.text
    unknown = phone.post("/login/unlock", data={"email": "nobody@example.org", "csrf_token": csrf})
    assert unknown.status_code == 200
    assert "an unlock link is on its way" in unknown.text
    db.rollback()
    links = db.exec(select(OutboxMessage.link).where(OutboxMessage.user_id == owner.id)).all()
    assert len(links) == 1
    assert links[0] is not None
    link = links[0]
    assert link.startswith("/login/unlock/")

    # The link shows a button (a mail scanner's GET uses nothing up); the POST unlocks.
    assert phone.get(link).status_code == 200
    forged = phone.post(link[:-3] + "abc", data={"csrf_token": csrf})
    assert forged.status_code == 404
    used = phone.post(link, data={"csrf_token": csrf})
    assert used.status_code == 200
    assert "unlocked" in used.text
    again = phone.post(link, data={"csrf_token": csrf})
    assert again.status_code == 409
    assert attempt(phone, owner.email) == (200, None)

    # The owner at work was never stopped; the attacker's count started again only for the
    # account-wide mark, and the attacker still waits between guesses.
    assert attempt(at_work, owner.email) == (200, None)
    db.rollback()
    details = db.exec(
        select(AuditEntry.detail).where(AuditEntry.object_type == "login_unlock")
    ).all()
    assert sorted(details) == ["link sent", "throttle cleared"]


def test_an_expired_unlock_link_is_refused(
    at: At, users: Users, clock: ManualClock, db: Session
) -> None:
    owner = users.make(Role.specialist)
    client = at(OWNER)
    assert (
        client.post("/api/v1/auth/unlock-requests", json={"email": owner.email}).status_code == 202
    )
    db.rollback()
    link = db.exec(select(OutboxMessage.link).where(OutboxMessage.user_id == owner.id)).one()
    assert link is not None
    token = link.removeprefix("/login/unlock/")
    clock.advance(timedelta(minutes=15))
    expired = client.post("/api/v1/auth/unlock", json={"token": token})
    assert expired.status_code == 409
    assert "expired" in expired.json()["error"]["message"]
    assert client.post("/api/v1/auth/unlock", json={"token": "x.y"}).status_code == 404


def _clinic_staff(db: Session, count: int) -> list[User]:
    """Accounts made with one password hash (thirty Argon2 hashes would only slow the test)."""
    password_hash = hash_password(PASSWORD, "light")
    staff = [
        User(
            email=f"nurse{n}@clinic.example.org",
            full_name=f"Nurse {n}",
            role=Role.clinician,
            facility_id=None,
            password_hash=password_hash,
        )
        for n in range(count)
    ]
    db.add_all(staff)
    db.commit()
    return staff


def test_a_clinic_of_thirty_behind_one_address_is_not_locked_out_by_one_users_typos(
    at: At, clock: ManualClock, db: Session, settings: Settings
) -> None:
    """One nurse mistypes for an hour, as fast as the throttle allows; everyone else at the
    clinic (the same NAT address) may log in at once, newcomers included."""
    typist, *colleagues = _clinic_staff(db, 31)
    clinic = at(CLINIC)
    assert attempt(clinic, typist.email) == (200, None)  # yesterday's shift, say
    clock.advance(timedelta(seconds=1))
    end = clock.now() + timedelta(hours=1)
    failures = 0
    while clock.now() < end:
        status, retry = attempt(clinic, typist.email, WRONG)
        if status == 429:
            assert retry is not None
            clock.advance(timedelta(seconds=retry))
        else:
            failures += 1
    assert 10 < failures < 30  # the doubling delay, far below the clinic's 300 an hour
    # Each colleague may try at once (the throttle's own answer: thirty password checks
    # would only slow the test), and one of them logs in through the page's API.
    policy = ThrottlePolicy.from_settings(settings)
    db.rollback()
    for colleague in colleagues:
        throttle.check(db, policy, colleague.email, CLINIC, clock.now())
    assert attempt(clinic, colleagues[0].email) == (200, None)
    # The typist alone waits, at the cap.
    assert attempt(clinic, typist.email, WRONG) == (401, None)
    assert attempt(clinic, typist.email) == (429, 600)


def test_a_flood_from_the_clinics_address_stops_newcomers_not_its_known_users(
    settings: Settings, engine: Engine, clock: ManualClock, db: Session
) -> None:
    """Past the per-address limit (here 6 an hour), an address may only log in to accounts
    that logged in from it lately; the same accounts elsewhere are untouched."""
    settings = settings.model_copy(update={"login_max_failures_per_address": 6})
    clock.set(T0)
    app = create_app(settings, engine, clock)
    clinic = TestClient(app, client=(CLINIC, 40000))
    regular, newcomer, *sprayed = _clinic_staff(db, 8)
    assert attempt(clinic, regular.email) == (200, None)
    for target in sprayed:
        assert attempt(clinic, target.email, WRONG) == (401, None)  # one each: no delay
    status, retry = attempt(clinic, newcomer.email)
    assert status == 429
    assert retry is not None
    assert 0 < retry <= 3600
    assert attempt(clinic, regular.email) == (200, None)
    elsewhere = TestClient(app, client=(OWNER, 40001))
    assert attempt(elsewhere, newcomer.email) == (200, None)
    clock.advance(timedelta(seconds=retry))
    assert attempt(clinic, newcomer.email) == (200, None)
