"""Offers: eligibility, emergency broadcast with one atomic winner, decline and expiry
moving to the next candidate, escalation and manual assignment (controllable clock)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session, select

from scheduling import iso_week
from telemed.accounts.models import Role
from telemed.consults.models import Consult, ConsultParticipant, ConsultState
from telemed.db import utcnow
from telemed.directory.models import SpecialistProfile
from telemed.directory.schemas import WindowIn
from telemed.offers import service as offers
from telemed.offers.models import OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.offers.service import DueReport
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.process_helpers import join_all


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def due(units: Units, db: Session, now: datetime, policy: OfferPolicy) -> DueReport:
    """The periodic job at a chosen instant, in units of work of its own (as a job runs);
    the test's session ends its transaction first, so that it holds no stale read."""
    db.rollback()
    return offers.process_due_offers(units, now, policy)


def state_of(db: Session, consult_id: int) -> str:
    db.rollback()
    consult = db.get(Consult, consult_id, populate_existing=True)
    assert consult is not None
    return str(consult.state)


def test_emergency_goes_to_every_eligible_specialist_and_no_one_else(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    good = [specialists.make(), specialists.make(time_zone="Europe/London")]
    specialists.make(verified=False)
    specialists.make(away=True)
    specialists.make(specialty="orthopaedics")
    specialists.make(languages=("en",))
    expired = specialists.make()
    profile = db.get(SpecialistProfile, expired.id)
    assert profile is not None
    profile.registration_expires_on = utcnow().date() - timedelta(days=1)
    db.add(profile)
    db.commit()
    specialists.make(windows=[])  # no slot before the deadline

    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()
    assert consult["state"] == "offered"
    made = offers_of(db, consult["id"])
    assert sorted(o.specialist_id for o in made) == sorted(u.id for u in good)
    assert all(o.expires_at - o.offered_at == timedelta(minutes=5) for o in made)
    assert {p["relation"] for p in consult["participants"]} == {"offered"}
    assert consult["events"][-1]["reason"].startswith("offered to ")


def test_two_specialists_accept_one_emergency_at_the_same_instant(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    first, second = specialists.make(), specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()["id"]
    by_user = {o.specialist_id: o.id for o in offers_of(db, consult_id)}
    clients = [login(first), login(second)]
    barrier = threading.Barrier(2)
    results: dict[int, httpx.Response] = {}

    def accept(api: ApiClient) -> None:
        barrier.wait(timeout=30)  # a thread that never arrives breaks it: no hang
        results[api.user.id or 0] = api.post(f"/api/v1/offers/{by_user[api.user.id]}/accept")

    threads = [threading.Thread(target=accept, args=(api,)) for api in clients]
    for t in threads:
        t.start()
    join_all(threads, 60, "the two accepts")
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], {k: r.text for k, r in results.items()}
    winner = next(k for k, r in results.items() if r.status_code == 200)
    loser = next(k for k, r in results.items() if r.status_code == 409)
    assert results[loser].json()["error"]["code"] == "conflict"
    assert state_of(db, consult_id) == ConsultState.scheduled  # a video consult is booked
    statuses = {o.specialist_id: o.status for o in offers_of(db, consult_id)}
    assert statuses == {winner: OfferStatus.accepted, loser: OfferStatus.withdrawn}
    assigned = db.exec(
        select(ConsultParticipant.user_id).where(
            ConsultParticipant.consult_id == consult_id, ConsultParticipant.relation == "assigned"
        )
    ).all()
    assert list(assigned) == [winner]
    again = clients[1 if winner == clients[0].user.id else 0]
    retry = again.post(f"/api/v1/offers/{by_user[again.user.id]}/accept")
    assert retry.status_code == 409
    assert "withdrawn" in retry.json()["error"]["message"]
    detail = nurse.get(f"/api/v1/consults/{consult_id}").json()
    assert [e["to_state"] for e in detail["events"]][-3:] == ["accepted", "accepted", "scheduled"]


def test_decline_moves_to_the_next_candidate(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    first, second = specialists.make(), specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload(urgency="routine")).json()["id"]
    [offer] = offers_of(db, consult_id)
    assert offer.expires_at - offer.offered_at == timedelta(hours=12)
    offered, other = (first, second) if offer.specialist_id == first.id else (second, first)
    api = login(offered)
    inbox = api.get("/api/v1/offers").json()
    assert [o["id"] for o in inbox] == [offer.id]
    assert inbox[0]["question"].startswith("Fever and rash")
    assert login(other).post(f"/api/v1/offers/{offer.id}/accept").status_code == 404
    no_reason = api.post(f"/api/v1/offers/{offer.id}/decline", {"reason": " "})
    assert no_reason.status_code == 422
    declined = api.post(f"/api/v1/offers/{offer.id}/decline", {"reason": "on call tonight"})
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "declined"
    made = offers_of(db, consult_id)
    assert [(o.specialist_id, o.status, o.round) for o in made] == [
        (offered.id, OfferStatus.declined, 1),
        (other.id, OfferStatus.open, 2),
    ]
    assert state_of(db, consult_id) == ConsultState.offered
    late = api.post(f"/api/v1/offers/{offer.id}/accept")
    assert late.status_code == 409
    # Having declined, they no longer see the consult; the one now offered it does.
    assert api.get(f"/api/v1/consults/{consult_id}").status_code == 404
    assert login(other).get(f"/api/v1/consults/{consult_id}").status_code == 200
    events = nurse.get(f"/api/v1/consults/{consult_id}/events").json()
    assert [e["to_state"] for e in events] == [
        "draft",
        "requested",
        "offered",
        "requested",
        "offered",
    ]
    assert events[3]["reason"] == f"declined by {offered.full_name}: on call tonight"
    page = login(other).get("/offers")
    assert page.status_code == 200
    assert "Fever and rash" in page.text


def test_expiry_next_candidate_escalation_then_assigned_by_hand(
    specialists: Specialists,
    db: Session,
    units: Units,
    users: Users,
    login: LoginFn,
    policy: OfferPolicy,
) -> None:
    first, second = specialists.make(), specialists.make()
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload()).json()["id"]  # urgent
    policy = dataclasses.replace(policy, max_failures=2)
    t0 = utcnow()
    [offer1] = offers_of(db, consult_id)
    assert due(units, db, t0 + timedelta(minutes=29), policy).expired == []

    report = due(units, db, t0 + timedelta(minutes=31), policy)
    assert report.expired == [offer1.id]
    assert report.offered == [consult_id]
    made = offers_of(db, consult_id)
    assert [o.status for o in made] == [OfferStatus.expired, OfferStatus.open]
    assert {o.specialist_id for o in made} == {first.id, second.id}
    expired_api = login(first if offer1.specialist_id == first.id else second)
    assert expired_api.post(f"/api/v1/offers/{offer1.id}/accept").status_code == 409

    due(units, db, t0 + timedelta(minutes=62), policy)
    assert state_of(db, consult_id) == ConsultState.escalated
    again = due(units, db, t0 + timedelta(minutes=63), policy)
    assert again.expired == []
    assert again.offered == []
    assert again.escalated == []

    coordinator = login(specialists.coordinator)
    queue = coordinator.get("/api/v1/escalations").json()
    assert [c["consult_id"] for c in queue] == [consult_id]
    assert queue[0]["reason"] == "2 offers declined or expired"
    assert "Consult" in coordinator.get("/coordinator/escalations").text
    unverified = specialists.make(verified=False)
    refused = coordinator.post(
        f"/api/v1/consults/{consult_id}/assign", {"specialist_id": unverified.id}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "specialist_id"
    assert (
        nurse.post(f"/api/v1/consults/{consult_id}/assign", {"specialist_id": first.id}).status_code
        == 403
    )
    agreed = (utcnow() + timedelta(days=1)).replace(hour=8, minute=0, second=0, microsecond=0)
    naive = {"specialist_id": first.id, "starts_at": agreed.replace(tzinfo=None).isoformat()}
    assert coordinator.post(f"/api/v1/consults/{consult_id}/assign", naive).status_code == 422
    assigned = coordinator.post(
        f"/api/v1/consults/{consult_id}/assign",
        {
            "specialist_id": first.id,
            "reason": "phoned her, she can take it",
            "starts_at": agreed.isoformat(),
        },
    )
    assert assigned.status_code == 200, assigned.text
    assert state_of(db, consult_id) == ConsultState.scheduled  # at the time agreed by phone
    booked = coordinator.get(f"/api/v1/consults/{consult_id}/appointment").json()
    assert datetime.fromisoformat(booked["starts_at"]) == agreed
    detail = nurse.get(f"/api/v1/consults/{consult_id}").json()
    assert ("assigned", first.id) in {(p["relation"], p["user_id"]) for p in detail["participants"]}
    # (ordered by time: the clock driven ahead above puts the escalation "later")
    by = f"assigned by {specialists.coordinator.full_name} to {first.full_name}"
    assert any(e["reason"].startswith(by) for e in detail["events"])
    twice = coordinator.post(f"/api/v1/consults/{consult_id}/assign", {"specialist_id": second.id})
    assert twice.status_code == 409
    schedule = login(first).get("/api/v1/schedule").json()
    assert [s["consult_id"] for s in schedule] == [consult_id]


def test_no_candidate_waits_then_escalates(
    db: Session, units: Units, users: Users, login: LoginFn, policy: OfferPolicy
) -> None:
    nurse = login(users.make(Role.clinician))
    consult_id = nurse.post("/api/v1/consults", consult_payload(urgency="urgent")).json()["id"]
    assert state_of(db, consult_id) == ConsultState.requested  # nobody yet: keeps waiting
    t0 = utcnow()
    due(units, db, t0 + timedelta(minutes=20), policy)
    assert state_of(db, consult_id) == ConsultState.requested
    report = due(units, db, t0 + timedelta(minutes=31), policy)
    assert report.escalated == [consult_id]
    assert state_of(db, consult_id) == ConsultState.escalated
    # An emergency never waits for that timer (issue 15): escalated in the request itself.
    emergency = nurse.post("/api/v1/consults", consult_payload(urgency="emergency")).json()["id"]
    assert state_of(db, emergency) == ConsultState.escalated


def _window_from(now: datetime, zone: str, hours_ahead: int, minutes: int) -> WindowIn:
    """A weekly window starting a whole half-hour ``hours_ahead`` from ``now`` (local)."""
    local = (now + timedelta(hours=hours_ahead)).astimezone(ZoneInfo(zone))
    start = local.replace(minute=0 if local.minute < 30 else 30, second=0, microsecond=0)
    start += timedelta(minutes=30)
    if start.date() != (start + timedelta(minutes=minutes)).date():  # keep it in one day
        start = (start + timedelta(days=1)).replace(hour=6, minute=0)
    end = start + timedelta(minutes=minutes)
    return WindowIn(weekday=start.weekday(), start=start.time(), end=end.time())


def test_batch_matching_gives_both_waiting_requests_a_specialist(
    specialists: Specialists,
    db: Session,
    units: Units,
    users: Users,
    login: LoginFn,
    policy: OfferPolicy,
) -> None:
    """Two urgent requests wait; the bilingual specialist's only slot is the earliest.
    One request at a time (greedy) would give it to the English one and leave the Sesotho
    one without anyone; the batch's min-cost assignment serves both."""
    nurse = login(users.make(Role.clinician))
    english = nurse.post(
        "/api/v1/consults", consult_payload(urgency="urgent", language="en")
    ).json()["id"]
    sesotho = nurse.post(
        "/api/v1/consults", consult_payload(urgency="urgent", language="st")
    ).json()["id"]
    assert offers_of(db, english) == []
    assert offers_of(db, sesotho) == []
    now = utcnow()
    zone = "Africa/Johannesburg"
    bilingual = specialists.make(
        languages=("st", "en"), time_zone=zone, windows=[_window_from(now, zone, 1, 30)]
    )
    english_only = specialists.make(
        languages=("en",), time_zone=zone, windows=[_window_from(now, zone, 4, 60)]
    )
    report = due(units, db, now, policy)
    assert sorted(report.offered) == sorted([english, sesotho])
    assert [o.specialist_id for o in offers_of(db, sesotho)] == [bilingual.id]
    assert [o.specialist_id for o in offers_of(db, english)] == [english_only.id]


def _next_local(weekday: int, hour: int, zone: str) -> datetime:
    """The next ``weekday`` (0 = Monday) at ``hour`` in ``zone``, at least a day from now, so
    that everything the test sets up with the real clock lies before it."""
    local = (utcnow() + timedelta(days=1)).astimezone(ZoneInfo(zone))
    local = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    local += timedelta(days=(weekday - local.weekday()) % 7)
    return local.astimezone(ZoneInfo("UTC"))


@pytest.mark.parametrize(
    ("weekday", "hour"),
    [
        pytest.param(0, 8, id="monday-morning"),
        pytest.param(6, 21, id="late-sunday"),  # three hours left in the specialist's week
    ],
)
def test_a_weekly_cap_in_hours_stops_offers_in_a_full_week(
    specialists: Specialists,
    db: Session,
    users: Users,
    login: LoginFn,
    clock: ManualClock,
    weekday: int,
    hour: int,
) -> None:
    """A one-hour cap is two 30-minute sessions in the specialist's week. On a pinned clock,
    so that the week has room for a third session (a Monday morning; a Sunday evening with
    six free half-hours) and only the cap can push it into the next week."""
    volunteer = specialists.make()
    clock.set(_next_local(weekday, hour, volunteer.timezone))
    api = login(volunteer)
    url = "/api/v1/specialists/me/availability"
    availability = api.get(url).json()
    del availability["time_zone"]

    def cap_hours(hours: object) -> httpx.Response:
        body = {**availability, "weekly_cap_hours": hours}
        return api.client.put(url, json=body, headers={"X-CSRF-Token": api.csrf})

    assert cap_hours(0.2).status_code == 422  # half hours only
    assert cap_hours(-1).status_code == 422
    assert cap_hours(1).json()["weekly_cap_hours"] == 1.0
    nurse = login(users.make(Role.clinician))
    slots = []
    for _ in range(3):
        consult_id = nurse.post(
            "/api/v1/consults", consult_payload(mode="video", urgency="routine")
        ).json()["id"]
        [offer] = offers_of(db, consult_id)
        assert api.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
        assert offer.slot_start is not None
        slots.append(offer.slot_start)
    this_week = iso_week(clock.now(), volunteer.timezone)
    weeks = [iso_week(start, volunteer.timezone) for start in slots]
    assert weeks[:2] == [this_week, this_week], slots
    assert weeks[2] > this_week, slots


def test_an_appointment_moved_off_the_slot_grid_blocks_the_slots_it_overlaps(
    specialists: Specialists, db: Session, users: Users, login: LoginFn
) -> None:
    volunteer = specialists.make()
    doctor = login(volunteer)
    nurse = login(users.make(Role.clinician))
    first = nurse.post("/api/v1/consults", consult_payload(mode="video")).json()["id"]
    [offer] = offers_of(db, first)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    appointment = doctor.get(f"/api/v1/consults/{first}/appointment").json()
    grid = (utcnow() + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    off_grid = grid + timedelta(minutes=10)  # 10 past: overlaps the :00 and :30 slots
    moved = doctor.post(
        f"/api/v1/appointments/{appointment['id']}/reschedule",
        {"starts_at": off_grid.isoformat(), "reason": "ward round first"},
    )
    assert moved.status_code == 200, moved.text
    # Fill every slot before the moved appointment, then ask for one more.
    taken = [off_grid]
    for _ in range(8):
        consult_id = nurse.post("/api/v1/consults", consult_payload(mode="video")).json()["id"]
        made = offers_of(db, consult_id)
        if not made:
            break
        assert made[0].slot_start is not None
        assert not (grid <= made[0].slot_start < grid + timedelta(hours=1)), made[0].slot_start
        taken.append(made[0].slot_start)
    assert len(taken) > 1
