"""The on-call rota (issue 10, item 3): declaring weekly blocks and every refusal; an
emergency at night reaching the on-call specialist first with a one-tap link that works
once, from a phone without a session, and never on a GET; broadcast then escalation when
the on-call specialist does not answer; the coordinator's week with its uncovered hours
across a clock change in the specialist's zone. On the injected clock, on both databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from telemed.accounts.models import Role, User
from telemed.app import create_app
from telemed.audit.models import AuditAction, AuditEntry
from telemed.consults.models import Consult, ConsultState
from telemed.demo.seed import seed_demo
from telemed.notifications.models import Channel, OutboxMessage
from telemed.offers import service as offers
from telemed.offers.models import OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.oncall.models import OnCallBlock
from telemed.oncall.policy import OnCallPolicy
from telemed.oncall.report import week_rota
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import ALL_DAY, Specialists, offers_of
from tests.helpers import ManualClock, Users, consult_payload
from tests.process_helpers import join_all

# Saturday 12 December 2026, 02:00 in Maseru: 00:00 UTC, 00:00 in London (GMT).
NIGHT = datetime(2026, 12, 12, 0, 0, tzinfo=UTC)
SATURDAY = 5
NIGHT_BLOCK = {"specialty": "paediatrics", "weekday": SATURDAY, "start": "00:00", "end": "06:00"}


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def audit_rows(db: Session, object_type: str, action: AuditAction) -> list[AuditEntry]:
    db.rollback()
    return list(
        db.exec(
            select(AuditEntry)
            .where(AuditEntry.object_type == object_type, AuditEntry.action == action)
            .order_by(col(AuditEntry.id))
        )
    )


def blocks_stored(db: Session, user: User) -> int:
    db.rollback()
    return len(db.exec(select(OnCallBlock).where(OnCallBlock.user_id == user.id)).all())


def consult_state(db: Session, consult_id: int) -> str:
    db.rollback()
    consult = db.get(Consult, consult_id, populate_existing=True)
    assert consult is not None
    return str(consult.state)


def outbox_of(db: Session, user: User) -> list[OutboxMessage]:
    db.rollback()
    return list(
        db.exec(
            select(OutboxMessage)
            .where(OutboxMessage.user_id == user.id)
            .order_by(col(OutboxMessage.id))
        )
    )


def on_call_at_night(specialists: Specialists, login: LoginFn, db: Session) -> User:
    """A London specialist on call for paediatrics on Saturday 00:00-06:00 their time."""
    night = specialists.make(time_zone="Europe/London")
    night.phone = "+447700900123"  # a number for the SMS (as an account's phone is kept)
    db.add(night)
    db.commit()
    made = login(night).post("/api/v1/oncall/blocks", NIGHT_BLOCK)
    assert made.status_code == 201, made.text
    return night


def emergency(login: LoginFn, users: Users) -> int:
    nurse = login(users.make(Role.clinician))
    made = nurse.post("/api/v1/consults", consult_payload(urgency="emergency"))
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


def link_of(db: Session, user: User) -> str:
    [email] = [m for m in outbox_of(db, user) if m.channel == Channel.email]
    assert email.link is not None
    assert email.link.startswith("/oncall/accept/")
    return email.link


def test_declaring_blocks_and_each_refusal(
    specialists: Specialists, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    clock.set(NIGHT - timedelta(days=3))  # Wednesday 9 December
    specialist = specialists.make(time_zone="Europe/London")
    api = login(specialist)
    made = api.post("/api/v1/oncall/blocks", NIGHT_BLOCK)
    assert made.status_code == 201, made.text
    assert made.json()["time_zone"] == "Europe/London"
    whole_sunday = {"specialty": "paediatrics", "weekday": 6, "start": "00:00", "end": "00:00"}
    assert api.post("/api/v1/oncall/blocks", whole_sunday).status_code == 201
    leave = api.client.put(
        "/api/v1/specialists/me/availability",
        json={
            "weekly": [w.model_dump(mode="json") for w in ALL_DAY],
            "leave": [{"first_day": "2026-12-14", "last_day": "2026-12-15"}],  # Mon, Tue
        },
        headers={"X-CSRF-Token": api.csrf},
    )
    assert leave.status_code == 200, leave.text
    denied_before = len(audit_rows(db, "oncall_block", AuditAction.denied))

    refused = [
        ({**NIGHT_BLOCK, "specialty": "astrology"}, 422, "specialty", "unknown specialty"),
        ({**NIGHT_BLOCK, "specialty": "orthopaedics"}, 422, "specialty", "do not hold"),
        ({**NIGHT_BLOCK, "weekday": 2, "start": "06:00", "end": "05:00"}, 422, "end", "end after"),
        ({**NIGHT_BLOCK, "start": "05:00", "end": "07:00"}, 409, "start", "overlaps"),
        ({**NIGHT_BLOCK, "weekday": 0}, 409, "weekday", "on leave on Mon 14 Dec 2026"),
    ]
    for body, status, field, words in refused:
        answer = api.post("/api/v1/oncall/blocks", body)
        assert answer.status_code == status, (body, answer.text)
        error = answer.json()["error"]
        assert error["fields"][0]["field"] == field, error
        assert words in error["message"], error
    assert blocks_stored(db, specialist) == 2  # nothing stored by any refusal
    denied = audit_rows(db, "oncall_block", AuditAction.denied)
    assert len(denied) - denied_before == len(refused)
    assert all(e.actor_id == specialist.id for e in denied)
    # The same time on a day without leave, and another specialty's overlap, are fine.
    assert api.post("/api/v1/oncall/blocks", {**NIGHT_BLOCK, "weekday": 3}).status_code == 201
    listed = api.get("/api/v1/oncall/blocks").json()
    assert [(b["weekday"], b["start"], b["end"]) for b in listed] == [
        (3, "00:00:00", "06:00:00"),
        (5, "00:00:00", "06:00:00"),
        (6, "00:00:00", "00:00:00"),
    ]


def test_the_block_page_refuses_with_the_field_and_is_linked_from_the_profile(
    specialists: Specialists, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    clock.set(NIGHT - timedelta(days=3))
    api = login(specialists.make(time_zone="Europe/London"))
    profile = api.get("/specialists/profile")
    assert 'href="/specialists/oncall"' in profile.text
    form = {"csrf_token": api.csrf, "specialty": "paediatrics", "weekday": "5"}
    bad = api.client.post("/specialists/oncall", data={**form, "start": "06:00", "end": "05:00"})
    assert bad.status_code == 422
    assert 'data-field="end"' in bad.text
    good = api.client.post("/specialists/oncall", data={**form, "start": "00:00", "end": "06:00"})
    assert good.status_code == 200
    assert "Saturday" in good.text


def test_an_emergency_at_two_in_the_night_goes_to_the_on_call_specialist_first(
    specialists: Specialists,
    login: LoginFn,
    users: Users,
    db: Session,
    clock: ManualClock,
    client: TestClient,
    settings: Settings,
) -> None:
    clock.set(NIGHT)
    night = on_call_at_night(specialists, login, db)
    others = [specialists.make(time_zone="America/Chicago"), specialists.make()]
    consult_id = emergency(login, users)

    [offer] = offers_of(db, consult_id)
    assert (offer.specialist_id, offer.round) == (night.id, 1)  # no one else yet
    assert offer.expires_at - offer.offered_at == timedelta(minutes=5)
    messages = outbox_of(db, night)
    assert {m.channel for m in messages} == {Channel.email, Channel.sms}
    path = link_of(db, night)
    [sms] = [m for m in messages if m.channel == Channel.sms]
    assert settings.public_base_url + path in sms.body
    assert all(outbox_of(db, o) == [] for o in others)
    assert audit_rows(db, "oncall_link", AuditAction.create)[-1].object_id == str(offer.id)

    # A fresh phone: no session. The GET (or a link prefetcher) only shows the question.
    for _ in range(2):
        shown = client.get(path)
        assert shown.status_code == 200, shown.text
        assert "Accept this emergency" in shown.text
        assert shown.headers["referrer-policy"] == "no-referrer"
    assert offers_of(db, consult_id)[0].status == OfferStatus.open
    assert consult_state(db, consult_id) == ConsultState.offered

    clock.advance(timedelta(minutes=2))
    accepted = client.post(path)
    assert accepted.status_code == 200, accepted.text
    assert "Accepted" in accepted.text
    assert offers_of(db, consult_id)[0].status == OfferStatus.accepted
    assert consult_state(db, consult_id) == ConsultState.scheduled  # video: booked now
    used = audit_rows(db, "oncall_link", AuditAction.update)  # the single use, audited
    assert [(e.object_id, e.actor_id, e.detail) for e in used] == [
        (str(offer.id), night.id, "link used")
    ]

    denied_before = len(audit_rows(db, "oncall_link", AuditAction.denied))
    again = client.post(path)
    assert again.status_code == 409
    assert "used already" in again.text
    assert client.get(path).status_code == 409  # the page says so too
    assert len(audit_rows(db, "oncall_link", AuditAction.denied)) == denied_before + 2
    forged = client.post(path[:-3] + "xyz")
    assert forged.status_code == 404


def test_an_expired_link_books_nothing(
    specialists: Specialists,
    login: LoginFn,
    users: Users,
    db: Session,
    clock: ManualClock,
    client: TestClient,
) -> None:
    clock.set(NIGHT + timedelta(hours=1))
    night = on_call_at_night(specialists, login, db)
    consult_id = emergency(login, users)
    path = link_of(db, night)
    clock.advance(timedelta(minutes=5, seconds=1))
    assert client.get(path).status_code == 409
    late = client.post(path)
    assert late.status_code == 409
    assert "expired" in late.text
    assert consult_state(db, consult_id) == ConsultState.offered  # nothing accepted
    assert offers_of(db, consult_id)[0].status == OfferStatus.open  # until the run expires it
    denied = audit_rows(db, "oncall_link", AuditAction.denied)
    assert len(denied) == 2
    assert "expired" in denied[-1].detail


def test_nobody_on_call_answers_then_broadcast_then_escalation(
    specialists: Specialists,
    login: LoginFn,
    users: Users,
    db: Session,
    clock: ManualClock,
    units: Units,
    policy: OfferPolicy,
) -> None:
    clock.set(NIGHT + timedelta(hours=2))
    night = on_call_at_night(specialists, login, db)
    others = sorted(u.id for u in (specialists.make(), specialists.make(time_zone="Asia/Tokyo")))
    consult_id = emergency(login, users)
    assert [o.specialist_id for o in offers_of(db, consult_id)] == [night.id]

    at = clock.now()
    for _ in range(20):  # the periodic run, every minute, until the consult is escalated
        at += timedelta(minutes=1)
        db.rollback()
        offers.process_due_offers(units, at, policy)
        if consult_state(db, consult_id) == ConsultState.escalated:
            break
    made = offers_of(db, consult_id)
    assert [(o.specialist_id, o.status) for o in made if o.round == 1] == [
        (night.id, OfferStatus.expired)
    ]
    assert sorted(o.specialist_id for o in made if o.round == 2) == others  # the broadcast
    assert all(o.status == OfferStatus.expired for o in made)
    assert consult_state(db, consult_id) == ConsultState.escalated


def test_rota_gaps_in_maseru_time_across_the_clock_change_in_london(
    specialists: Specialists, login: LoginFn, db: Session, clock: ManualClock
) -> None:
    # Thursday 25 March 2027, noon in Maseru; London springs forward on Sunday 28 March.
    clock.set(datetime(2027, 3, 25, 10, 0, tzinfo=UTC))
    london = specialists.make(time_zone="Europe/London")
    sunday_night = {"specialty": "paediatrics", "weekday": 6, "start": "00:00", "end": "06:00"}
    assert login(london).post("/api/v1/oncall/blocks", sunday_night).status_code == 201
    coordinator = login(specialists.coordinator)

    week = coordinator.get("/api/v1/oncall/rota").json()
    assert week["time_zone"] == "Africa/Maseru"
    assert (week["week_start"], week["week_end"]) == ("Thu 25 Mar 2027", "Wed 31 Mar 2027")
    rows = {r["specialty"]: r for r in week["specialties"]}
    paediatrics = rows["paediatrics"]
    # 00:00 GMT to 06:00 BST is five real hours: 02:00 to 07:00 in Maseru.
    assert [(s["start"], s["end"]) for s in paediatrics["covered"]] == [
        ("Sun 28 Mar 02:00", "07:00")
    ]
    assert [(g["start"], g["end"]) for g in paediatrics["gaps"]] == [
        ("Thu 25 Mar 00:00", "Sun 28 Mar 02:00"),
        ("Sun 28 Mar 07:00", "Thu 01 Apr 00:00"),
    ]
    assert paediatrics["uncovered_hours"] == 7 * 24 - 5
    assert rows["orthopaedics"]["uncovered_hours"] == 7 * 24

    page = coordinator.get("/coordinator/oncall")
    assert page.status_code == 200
    assert "Sun 28 Mar 02:00\u201307:00 Dr Volunteer" in page.text
    assert '<td class="uncovered">163</td>' in page.text
    assert login(london).get("/coordinator/oncall").status_code == 403


def test_the_week_before_has_six_hours_of_the_same_block(
    specialists: Specialists, login: LoginFn, clock: ManualClock, db: Session
) -> None:
    clock.set(datetime(2027, 3, 18, 10, 0, tzinfo=UTC))  # a week earlier: GMT all week
    london = specialists.make(time_zone="Europe/London")
    sunday_night = {"specialty": "paediatrics", "weekday": 6, "start": "00:00", "end": "06:00"}
    assert login(london).post("/api/v1/oncall/blocks", sunday_night).status_code == 201
    week = login(specialists.coordinator).get("/api/v1/oncall/rota").json()
    [paediatrics] = [r for r in week["specialties"] if r["specialty"] == "paediatrics"]
    assert paediatrics["uncovered_hours"] == 7 * 24 - 6


def test_two_taps_on_the_same_link_at_once_accept_once(
    specialists: Specialists,
    login: LoginFn,
    users: Users,
    db: Session,
    clock: ManualClock,
    settings: Settings,
    engine: Engine,
) -> None:
    clock.set(NIGHT + timedelta(hours=3))
    night = on_call_at_night(specialists, login, db)
    consult_id = emergency(login, users)
    path = link_of(db, night)
    phones = [TestClient(create_app(settings, engine, clock)) for _ in range(2)]
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def tap(phone: TestClient) -> None:
        barrier.wait(timeout=30)
        codes.append(phone.post(path).status_code)

    threads = [threading.Thread(target=tap, args=(phone,)) for phone in phones]
    for t in threads:
        t.start()
    join_all(threads, 60, "the two taps")
    for phone in phones:
        phone.close()
    assert sorted(codes) == [200, 409]
    assert [o.status for o in offers_of(db, consult_id)] == [OfferStatus.accepted]
    assert consult_state(db, consult_id) == ConsultState.scheduled


def test_the_demo_has_a_rota_worth_reading(db: Session, settings: Settings) -> None:
    """``make run``'s demo: the paediatrician covers weeknights (21:00-07:00 in
    Johannesburg, Maseru's offset), the London internist weekend days (08:00-20:00 GMT)."""
    assert seed_demo(db, settings, history=False)
    db.commit()
    coordinator = db.exec(select(User).where(User.role == Role.coordinator)).first()
    assert coordinator is not None
    monday = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # a week without a clock change
    rows = {r.specialty: r for r in week_rota(db, coordinator, monday, "Africa/Maseru").specialties}
    assert rows["paediatrics"].uncovered_hours == 7 * 24 - 5 * 10
    assert rows["paediatrics"].covered[0].start == "Mon 07 Dec 21:00"
    assert rows["internal_medicine"].uncovered_hours == 7 * 24 - 2 * 12
    assert rows["obstetrics_gynaecology"].uncovered_hours == 7 * 24


def test_the_answer_window_is_a_setting(settings: Settings) -> None:
    minutes = settings.model_copy(update={"oncall_answer_minutes": 9})
    assert OnCallPolicy.from_settings(minutes).answer_window == timedelta(minutes=9)
    assert OnCallPolicy.from_settings(settings).answer_window == timedelta(minutes=5)
