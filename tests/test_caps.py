"""Weekly caps as invariants (issue 10): counted in the specialist's ISO week of the
appointment, open offers as tentative load, checked again under the specialist's row lock
at accept; on both databases, the races synchronised with a barrier."""

from __future__ import annotations

import threading
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import Session, col, select

from scheduling import iso_week
from telemed.accounts.models import Role, User
from telemed.appointments.caps import Caps, Held
from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.audit.models import AuditAction, AuditEntry
from telemed.db import utcnow
from telemed.directory.models import SpecialistProfile
from telemed.directory.schemas import WindowIn
from telemed.offers.models import OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists, offers_of
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.process_helpers import join_all
from tests.test_availability_grid import grid_form, post
from tests.test_offers import due, state_of

AVAILABILITY = "/api/v1/specialists/me/availability"
CASE = {"patient_ref": "MOT-1", "age_years": 4, "sex": "female"}


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


def wednesday_morning(zone: str) -> datetime:
    """A Wednesday 09:00 in ``zone`` at least a day ahead: an urgent consult's day (its
    deadline) lies inside that ISO week, and everything set up with the real clock before."""
    local = (utcnow() + timedelta(days=1)).astimezone(ZoneInfo(zone))
    local = local.replace(hour=9, minute=0, second=0, microsecond=0)
    local += timedelta(days=(2 - local.weekday()) % 7)
    return local.astimezone(ZoneInfo("UTC"))


def set_caps(
    api: ApiClient, consults: int | None = None, hours: float | None = None
) -> httpx.Response:
    body = api.get(AVAILABILITY).json()
    del body["time_zone"]
    body.update(weekly_cap=consults, weekly_cap_hours=hours)
    return api.client.put(AVAILABILITY, json=body, headers={"X-CSRF-Token": api.csrf})


def field_of(response: httpx.Response) -> str:
    return str(response.json()["error"]["fields"][0]["field"])


def live_appointments(db: Session, specialist: User) -> list[Appointment]:
    db.rollback()
    return list(
        db.exec(
            select(Appointment).where(
                Appointment.specialist_id == specialist.id,
                col(Appointment.status) != AppointmentStatus.cancelled,
            )
        )
    )


def refusals(db: Session, detail_start: str) -> list[AuditEntry]:
    db.rollback()
    rows = db.exec(select(AuditEntry).where(AuditEntry.action == AuditAction.denied))
    return [row for row in rows if row.detail.startswith(detail_start)]


def at_once(calls: list[tuple[ApiClient, str, object]]) -> list[httpx.Response]:
    """POST each ``(client, url, body)`` from its own thread, released together."""
    barrier = threading.Barrier(len(calls))
    results: dict[int, httpx.Response] = {}

    def run(index: int, api: ApiClient, url: str, body: object) -> None:
        barrier.wait(timeout=30)  # a thread that never arrives breaks it: no hang
        results[index] = api.post(url, body)

    threads = [threading.Thread(target=run, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    join_all(threads, 120, "the simultaneous requests")
    return [results[i] for i in range(len(calls))]


def test_two_offer_runs_at_once_offer_a_cap_of_one_only_once(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    volunteer = specialists.make()
    clock.set(wednesday_morning(volunteer.timezone))
    assert set_caps(login(volunteer), consults=1).status_code == 200
    nurses = [login(users.make(Role.clinician)), login(users.make(Role.clinician))]
    made = at_once(
        [
            (nurse, "/api/v1/consults", consult_payload(case={**CASE, "patient_ref": f"MOT-{i}"}))
            for i, nurse in enumerate(nurses)
        ]
    )
    assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
    offered = [offers_of(db, r.json()["id"]) for r in made]
    assert sorted(len(o) for o in offered) == [0, 1], offered
    assert sorted(r.json()["state"] for r in made) == ["offered", "requested"]


def test_two_accepts_at_once_for_a_cap_of_one_book_exactly_one(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    """Both offers were made under a cap of 2; the specialist lowers it to 1 and two
    accepts race: the row lock lets one book, the other is refused naming the cap."""
    volunteer = specialists.make()
    clock.set(wednesday_morning(volunteer.timezone))
    doctor = login(volunteer)
    assert set_caps(doctor, consults=2).status_code == 200
    nurse = login(users.make(Role.clinician))
    consults = [nurse.post("/api/v1/consults", consult_payload()).json()["id"] for _ in range(2)]
    offers = [offers_of(db, c)[0] for c in consults]
    assert all(o.specialist_id == volunteer.id for o in offers)
    assert set_caps(doctor, consults=1).status_code == 200
    second = login(volunteer)
    answers = at_once(
        [
            (api, f"/api/v1/offers/{o.id}/accept", None)
            for api, o in zip((doctor, second), offers, strict=True)
        ]
    )
    assert sorted(r.status_code for r in answers) == [200, 409], [r.text for r in answers]
    refused = next(r for r in answers if r.status_code == 409)
    assert field_of(refused) == "cap"
    assert "weekly cap of 1 consults" in refused.json()["error"]["message"]
    assert len(live_appointments(db, volunteer)) == 1
    statuses = sorted(offers_of(db, c)[0].status for c in consults)
    assert statuses == [OfferStatus.accepted, OfferStatus.open]  # the loser may still decline
    assert len(refusals(db, "cap:")) == 1


def test_one_batch_never_offers_two_slots_past_the_hours_cap(
    specialists: Specialists,
    db: Session,
    units: Units,
    users: Users,
    login: LoginFn,
    clock: ManualClock,
    policy: OfferPolicy,
) -> None:
    clock.set(wednesday_morning("Africa/Johannesburg"))
    nurse = login(users.make(Role.clinician))
    waiting = [nurse.post("/api/v1/consults", consult_payload()).json()["id"] for _ in range(2)]
    assert [offers_of(db, c) for c in waiting] == [[], []]  # nobody to offer them to yet
    volunteer = specialists.make()
    assert set_caps(login(volunteer), hours=0.5).status_code == 200
    report = due(units, db, clock.now() + timedelta(minutes=1), policy)
    assert report.failed == []
    offered = [o for c in waiting for o in offers_of(db, c)]
    assert [o.specialist_id for o in offered] == [volunteer.id]


def test_caps_count_the_week_of_the_appointment_not_of_acceptance(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    """A cap of one: a consult assigned today for next week's Wednesday fills next week,
    not this one (the old count, by acceptance, would have refused this week's offer);
    a second hand assignment into next week is refused, audited, and nothing changes."""
    volunteer = specialists.make()
    zone = volunteer.timezone
    clock.set(wednesday_morning(zone))
    assert set_caps(login(volunteer), consults=1).status_code == 200
    nurse = login(users.make(Role.clinician))
    coordinator = login(specialists.coordinator)
    next_week = clock.now() + timedelta(days=7, hours=1)
    later = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    # Offered this week (the cap still had room): withdrawn by the coordinator's assignment.
    assigned = coordinator.post(
        f"/api/v1/consults/{later}/assign",
        {"specialist_id": volunteer.id, "starts_at": next_week.isoformat()},
    )
    assert assigned.status_code == 200, assigned.text
    today = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    [offer] = offers_of(db, today)
    assert offer.specialist_id == volunteer.id
    assert offer.slot_start is not None
    assert iso_week(offer.slot_start, zone) == iso_week(clock.now(), zone)
    third = nurse.post("/api/v1/consults", consult_payload(urgency="routine")).json()["id"]
    refused = coordinator.post(
        f"/api/v1/consults/{third}/assign",
        {"specialist_id": volunteer.id, "starts_at": (next_week + timedelta(hours=2)).isoformat()},
    )
    assert refused.status_code == 409, refused.text
    assert field_of(refused) == "cap"
    assert [a.consult_id for a in live_appointments(db, volunteer)] == [later]
    assert state_of(db, third) != "accepted"
    assert refusals(db, "cap:")[0].consult_id == third


def test_a_reschedule_into_a_full_week_is_refused(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    volunteer = specialists.make()
    clock.set(wednesday_morning(volunteer.timezone))
    doctor = login(volunteer)
    assert set_caps(doctor, consults=1).status_code == 200
    nurse = login(users.make(Role.clinician))
    coordinator = login(specialists.coordinator)
    next_week = clock.now() + timedelta(days=7)
    first = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    assert coordinator.post(
        f"/api/v1/consults/{first}/assign",
        {"specialist_id": volunteer.id, "starts_at": next_week.isoformat()},
    ).is_success
    second = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    [offer] = offers_of(db, second)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    appointment = doctor.get(f"/api/v1/consults/{second}/appointment").json()
    moved = doctor.post(
        f"/api/v1/appointments/{appointment['id']}/reschedule",
        {"starts_at": (next_week + timedelta(hours=3)).isoformat(), "reason": "theatre list"},
    )
    assert moved.status_code == 409, moved.text
    assert field_of(moved) == "cap"
    after = doctor.get(f"/api/v1/consults/{second}/appointment").json()
    assert after["starts_at"] == appointment["starts_at"]
    assert after["sequence"] == appointment["sequence"]
    within = doctor.post(
        f"/api/v1/appointments/{appointment['id']}/reschedule",
        {"starts_at": (clock.now() + timedelta(hours=5)).isoformat(), "reason": "earlier"},
    )
    assert within.status_code == 200, within.text  # its own week: it replaces itself


def test_a_cap_of_zero_pauses_new_bookings(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    volunteer = specialists.make()
    clock.set(wednesday_morning(volunteer.timezone))
    saved = set_caps(login(volunteer), consults=0)
    assert saved.status_code == 200
    assert saved.json()["weekly_cap"] == 0
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    assert offers_of(db, consult) == []
    refused = login(specialists.coordinator).post(
        f"/api/v1/consults/{consult}/assign", {"specialist_id": volunteer.id}
    )
    assert refused.status_code == 409
    assert field_of(refused) == "cap"
    assert "paused new bookings" in refused.json()["error"]["message"]
    assert state_of(db, consult) != "accepted"  # nothing booked half-way
    assert [r.consult_id for r in refusals(db, "cap:")] == [consult]  # the attempt audited


def test_an_offer_accepted_after_its_slot_began_books_the_next_free_slot(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    volunteer = specialists.make()
    clock.set(wednesday_morning(volunteer.timezone))
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload(urgency="routine")).json()["id"]
    [offer] = offers_of(db, consult)
    assert offer.slot_start is not None
    clock.set(offer.slot_start + timedelta(minutes=20))
    accepted = login(volunteer).post(f"/api/v1/offers/{offer.id}/accept")
    assert accepted.status_code == 200, accepted.text
    [appointment] = live_appointments(db, volunteer)
    assert appointment.starts_at >= clock.now() + timedelta(minutes=5)
    assert appointment.starts_at == offer.slot_start + timedelta(minutes=30)


def test_removing_the_hours_under_a_booked_appointment_is_refused(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    volunteer = specialists.make()
    zone = volunteer.timezone
    clock.set(wednesday_morning(zone))
    doctor = login(volunteer)
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    [offer] = offers_of(db, consult)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    before = doctor.get(AVAILABILITY).json()
    body = {k: v for k, v in before.items() if k != "time_zone"}
    booked_day = clock.now().astimezone(ZoneInfo(zone)).weekday()
    body["weekly"] = [w for w in before["weekly"] if w["weekday"] != booked_day]
    refused = doctor.client.put(AVAILABILITY, json=body, headers={"X-CSRF-Token": doctor.csrf})
    assert refused.status_code == 409, refused.text
    assert field_of(refused) == "weekly"
    assert "reschedule or cancel it first" in refused.json()["error"]["message"]
    assert doctor.get(AVAILABILITY).json() == before
    assert len(refusals(db, "conflict: you have an appointment")) == 1
    other = (booked_day + 3) % 7  # hours with nothing booked may go
    body["weekly"] = [w for w in before["weekly"] if w["weekday"] != other]
    assert doctor.client.put(
        AVAILABILITY, json=body, headers={"X-CSRF-Token": doctor.csrf}
    ).is_success
    away = {**{k: v for k, v in before.items() if k != "time_zone"}, "away": True}
    saved = doctor.client.put(AVAILABILITY, json=away, headers={"X-CSRF-Token": doctor.csrf})
    assert saved.status_code == 200, saved.text
    db.rollback()
    profile = db.get(SpecialistProfile, volunteer.id, populate_existing=True)
    assert profile is not None
    assert profile.away


# The week rule on its own: Caps is the code every booking path asks.

UTC = ZoneInfo("UTC")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _one(start: str, minutes: int = 30) -> Held:
    begin = _at(start)
    return Held(1, begin, begin + timedelta(minutes=minutes))


def test_the_week_is_the_specialists_across_the_october_change_in_london() -> None:
    """Sunday 25 October 2026, 23:30 in London is GMT again (23:30 UTC): still London's
    week 43, though Maseru is already in Monday of week 44. Monday 00:30 London is week 44."""
    held = Caps("Europe/London", 1, None, (_one("2026-10-25T23:30:00+00:00"),))
    assert iso_week(held.held[0].start, "Africa/Maseru") == (2026, 44)
    monday = _at("2026-10-26T00:30:00+00:00")
    assert held.fits(monday, monday + timedelta(minutes=30))
    saturday_night = _at("2026-10-25T00:30:00+01:00")  # BST, before the change, week 43
    assert not held.fits(saturday_night, saturday_night + timedelta(minutes=30))
    # The same instants for a Maseru specialist: both in Maseru's week 44 / 43 the other way.
    maseru = Caps("Africa/Maseru", 1, None, (_one("2026-10-25T23:30:00+00:00"),))
    assert not maseru.fits(monday, monday + timedelta(minutes=30))
    assert maseru.fits(saturday_night, saturday_night + timedelta(minutes=30))


def test_the_hours_cap_counts_real_minutes_in_the_week_of_each_session() -> None:
    """One hour a week in London, 01:00-01:30 GMT on the change night plus 30 minutes more
    that week is the hour; a third half hour that week is not, the next Monday's is."""
    caps = Caps("Europe/London", None, 60, (_one("2026-10-25T01:00:00+00:00"),))
    extra = _at("2026-10-25T01:00:00+01:00")  # the first 01:00 (BST): 00:00 UTC
    assert caps.fits(extra, extra + timedelta(minutes=30))
    full = caps.plus(2, extra, extra + timedelta(minutes=30))
    late = _at("2026-10-25T22:00:00+00:00")
    assert full.refusal(late, late + timedelta(minutes=30)) is not None
    monday = _at("2026-10-26T08:00:00+00:00")
    assert full.fits(monday, monday + timedelta(minutes=30))


def test_a_cap_of_zero_refuses_everything_with_a_paused_message() -> None:
    caps = Caps("Pacific/Auckland", 0, None)
    start = _at("2026-12-07T09:00:00+13:00")
    why = caps.refusal(start, start + timedelta(minutes=30))
    assert why is not None
    assert "paused" in why


def test_the_availability_page_refuses_to_remove_booked_hours_and_saves_a_zero_cap(
    specialists: Specialists, db: Session, users: Users, login: LoginFn, clock: ManualClock
) -> None:
    london = "Europe/London"
    windows = [WindowIn(weekday=2, start=time(8), end=time(12))]  # Wednesdays
    volunteer = specialists.make(time_zone=london, windows=windows)
    clock.set(wednesday_morning(london) - timedelta(hours=1))  # 08:00 London
    doctor = login(volunteer)
    nurse = login(users.make(Role.clinician))
    consult = nurse.post("/api/v1/consults", consult_payload()).json()["id"]
    [offer] = offers_of(db, consult)
    assert doctor.post(f"/api/v1/offers/{offer.id}/accept").status_code == 200
    before = doctor.get(AVAILABILITY).json()
    refused = post(doctor, grid_form(doctor, ["0-0900"]))  # Mondays only
    assert refused.status_code == 409
    assert 'role="alert"' in refused.text
    assert "reschedule or cancel it first" in refused.text
    assert doctor.get(AVAILABILITY).json() == before
    assert len(refusals(db, "conflict: you have an appointment")) == 1  # the attempt audited
    kept = ["2-0800", "2-0830", "2-0900", "2-0930", "2-1000", "2-1030", "2-1100", "2-1130"]
    paused = post(doctor, grid_form(doctor, kept, weekly_cap="0"))
    assert paused.status_code == 303, paused.text
    assert doctor.get(AVAILABILITY).json()["weekly_cap"] == 0
