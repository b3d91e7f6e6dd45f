"""Six months of made-up history, so that the coordinator's uptake dashboard has
something to show on the embedded demo: requests across the districts, offers accepted
and declined, calls (some in low mode, some dropped and resumed), async answers,
escalations, cancellations, no-shows, outcomes, follow-ups and network tests.

The rows are written directly, with their times in the past, rather than through the
services: the services act at "now", and replaying six months through them would take
minutes. Deterministic (a fixed seed), so a demo looks the same every time. Two facilities
are left without requests for the last 40 days (the dashboard's dormant facilities), and
the two demo clinicians' facilities get no history, so their consult lists stay the short
demo ones. Every story is over 8 days before now, so none of it counts against a
specialist's weekly cap this week.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import insert, update
from sqlmodel import Session, SQLModel, select

from telemed.accounts.models import User
from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.cases.models import Case, Sex
from telemed.consults.models import (
    Consult,
    ConsultEvent,
    ConsultMode,
    ConsultState,
    Language,
    Urgency,
)
from telemed.consults.models import ConsultState as S
from telemed.db import pk
from telemed.facilities.models import Facility
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteStatus, Outcome
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.precall.models import NetworkRecommendation, NetworkTest
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent

DAYS = 182
QUIET_DAYS = 8  # nothing in the last week: no history counts against this week's caps
STORY_DAYS = 4  # the longest story: a decline, an escalation, a session two days later
SKIP = ("MOTEBANG", "MOKHOTLONG")  # the demo clinicians' facilities keep their short lists
DORMANT = ("SEMONKONG", "ROMA")  # no request in the last 40 days
SPECIALTIES = ("paediatrics", "internal_medicine", "infectious_diseases", "paediatrics")
QUESTIONS = (
    "Child with fever and cough for a week; pneumonia not improving on amoxicillin?",
    "Adult on ART with new headache and confusion; cryptococcal meningitis?",
    "Hypertension on three agents still above 170/100; next step?",
    "Newborn jaundice at day 5; phototherapy threshold?",
)


def seed_history(
    session: Session, clinician: User, specialists: list[User], now: datetime, *, seed: int = 2026
) -> int:
    """Write the history; returns how many consults it made. Only flushes."""
    rng = random.Random(seed)  # noqa: S311 - made-up demo data, not a secret
    facilities = session.exec(select(Facility).where(Facility.code.not_in(SKIP))).all()  # type: ignore[attr-defined]
    end = now - timedelta(days=QUIET_DAYS + STORY_DAYS)  # every story over before the quiet
    start = now - timedelta(days=DAYS)
    planned: list[tuple[Facility, datetime]] = []
    for facility in facilities:
        busy = rng.uniform(0.15, 0.7)  # requests per day
        day = start
        while day < end:
            quiet = facility.code in DORMANT and day > now - timedelta(days=40)
            if not quiet and rng.random() < busy:
                planned.append((facility, day + timedelta(minutes=rng.randint(6 * 60, 17 * 60))))
            day += timedelta(days=1)
    cases = [
        Case(
            patient_ref=f"H-{f.code[:4]}-{i:05d}",
            age_years=rng.randint(0, 80),
            sex=rng.choice((Sex.female, Sex.male)),
            facility_id=pk(f),
            created_by_id=pk(clinician),
            created_at=at,
        )
        for i, (f, at) in enumerate(planned)
    ]
    _insert(session, cases, ids=True)
    consults = [
        Consult(
            case_id=pk(case),
            facility_id=pk(f),
            specialty=rng.choice(SPECIALTIES),
            urgency=rng.choices(list(Urgency), weights=(1, 4, 6))[0],
            mode=rng.choices(list(ConsultMode), weights=(5, 3, 2))[0],
            language=rng.choice(list(Language)),
            question=rng.choice(QUESTIONS),
            created_by_id=pk(clinician),
            created_at=at,
            requested_at=at,
            state_changed_at=at,
        )
        for case, (f, at) in zip(cases, planned, strict=True)
    ]
    _insert(session, consults, ids=True)
    rows = Rows()
    calls: list[tuple[Consult, CallSession]] = []
    for consult in consults:
        calls.extend(_story(rows, rng, consult, clinician, specialists))
    rows.write(session)
    session.execute(
        update(Consult),
        [{"id": pk(c), "state": c.state, "state_changed_at": c.state_changed_at} for c in consults],
    )
    rows = Rows()
    for consult, call in calls:
        _call_events(rows, rng, consult, call)
    _network_tests(rows, rng, list(facilities), clinician, start, end)
    rows.write(session)
    return len(consults)


def _insert(session: Session, rows: Sequence[SQLModel], *, ids: bool = False) -> None:
    """Insert rows of one table without the unit of work's per-object bookkeeping (which
    made the seeding several times slower). Without ``ids``: one executemany. With: a
    statement per row, its id read back (a bulk RETURNING re-sorts its batches, which grows
    with the square of the rows on SQLite)."""
    if not rows:
        return
    model = type(rows[0])
    table = model.__table__  # type: ignore[attr-defined]
    values = [row.model_dump(exclude={"id"}) for row in rows]
    if not ids:
        session.execute(insert(table), values)
        return
    statement = insert(table).returning(table.c.id)
    for row, value in zip(rows, values, strict=True):
        row.id = session.execute(statement, value).scalar_one()


class Rows:
    """New rows collected by table, written table by table in an order the foreign keys
    allow (the order in which each table was first added)."""

    def __init__(self) -> None:
        self.tables: dict[type[SQLModel], list[SQLModel]] = {}

    def add(self, row: SQLModel) -> None:
        self.tables.setdefault(type(row), []).append(row)

    def add_all(self, rows: Sequence[SQLModel]) -> None:
        for row in rows:
            self.add(row)

    def write(self, session: Session) -> None:
        for model, rows in self.tables.items():
            _insert(session, rows, ids=model is CallSession)


def _story(
    out: Rows, rng: random.Random, c: Consult, clinician: User, specialists: list[User]
) -> list[tuple[Consult, CallSession]]:
    """One consult's life from request to its end, as events, offers, an appointment, a
    call, an outcome and perhaps a follow-up."""
    at = c.requested_at or c.created_at
    events = [
        ConsultEvent(
            consult_id=pk(c),
            actor_id=pk(clinician),
            at=at,
            from_state=S.draft,
            to_state=S.requested,
        )
    ]

    def move(to: ConsultState, when: datetime) -> None:
        events.append(ConsultEvent(consult_id=pk(c), at=when, from_state=c.state, to_state=to))
        c.state, c.state_changed_at = to, when

    c.state = S.requested
    roll = rng.random()
    if roll < 0.05:
        move(S.cancelled, at + timedelta(hours=rng.uniform(0.5, 6)))
        out.add_all(events)
        return []
    t = at + timedelta(minutes=rng.randint(2, 20))
    first, second = rng.sample(specialists, 2) if len(specialists) > 1 else (specialists[0],) * 2
    offers = []
    if rng.random() < 0.3:  # the first specialist declines
        answered = t + timedelta(hours=rng.uniform(0.2, 4))
        offers.append(_offer(c, first, t, timedelta(hours=12), answered, OfferStatus.declined))
        move(S.offered, t)
        move(S.requested, answered)  # declined: back to matching, the next one is offered
        t, first = answered, second
    if roll < 0.12:  # nobody in time: a coordinator's queue, then assigned
        move(S.offered, t)
        move(S.escalated, t + timedelta(hours=12))
        t = t + timedelta(hours=rng.uniform(12, 30))
        offers.append(_offer(c, first, t, timedelta(hours=1), t, OfferStatus.accepted))
    else:
        if c.state is not S.offered:
            move(S.offered, t)
        answered = t + timedelta(
            hours=rng.expovariate(1 / (2 if c.urgency is not Urgency.routine else 10))
        )
        offers.append(_offer(c, first, t, timedelta(hours=24), answered, OfferStatus.accepted))
        t = answered
    move(S.accepted, t)
    out.add_all(offers)
    calls: list[tuple[Consult, CallSession]] = []
    if c.mode is ConsultMode.asynchronous:
        t += timedelta(hours=rng.uniform(1, 24))
        move(S.answered_async, t)
    else:
        starts = t + timedelta(hours=rng.uniform(2, 48))
        appointment = Appointment(
            consult_id=pk(c),
            specialist_id=pk(first),
            starts_at=starts,
            ends_at=starts + timedelta(minutes=30),
            created_at=t,
            updated_at=t,
        )
        move(S.scheduled, t)
        if rng.random() < 0.07:
            appointment.status = AppointmentStatus.no_show
            move(S.no_show, starts + timedelta(minutes=15))
            out.add(appointment)
            out.add_all(events)
            return []
        appointment.status = AppointmentStatus.completed
        out.add(appointment)
        move(S.in_session, starts)
        minutes = rng.randint(8, 35)
        call = CallSession(
            consult_id=pk(c),
            room=f"history-{pk(c)}",
            started_at=starts,
            ended_at=starts + timedelta(minutes=minutes),
            duration_s=minutes * 60,
        )
        out.add(call)
        calls.append((c, call))
        t = starts + timedelta(minutes=minutes)
        move(S.completed, t)
    outcome = rng.choices(list(Outcome)[:4], weights=(6, 3, 2, 1))[0]
    out.add(
        ConsultOutcome(
            consult_id=pk(c),
            outcome=outcome,
            recorded_by_id=pk(first),
            recorded_at=t + timedelta(minutes=5),
        )
    )
    if rng.random() < 0.2:
        signed = t + timedelta(minutes=3)
        out.add(
            ConsultNote(
                consult_id=pk(c),
                series_id=f"history-{pk(c)}",
                author_id=pk(first),
                author_role="specialist",
                status=NoteStatus.signed,
                assessment="See plan.",
                plan="Review in two weeks.",
                follow_up_on=(signed + timedelta(days=14)).date(),
                created_at=signed,
                updated_at=signed,
                signed_at=signed,
            )
        )
    out.add_all(events)
    return calls


def _call_events(out: Rows, rng: random.Random, c: Consult, call: CallSession) -> None:
    at = call.started_at
    rows = [
        CallSessionEvent(
            call_session_id=pk(call), consult_id=pk(c), kind=CallEventKind.joined, at=at
        )
    ]
    if rng.random() < 0.35:
        mode = rng.choice(("low", "audio-only"))
        rows.append(
            CallSessionEvent(
                call_session_id=pk(call),
                consult_id=pk(c),
                kind=CallEventKind.media,
                at=at + timedelta(minutes=2),
                detail=json.dumps({"mode": mode}, separators=(",", ":")),
            )
        )
    if rng.random() < 0.25:
        rows.append(
            CallSessionEvent(
                call_session_id=pk(call),
                consult_id=pk(c),
                kind=CallEventKind.reconnecting,
                at=at + timedelta(minutes=4),
            )
        )
        if rng.random() < 0.7:
            rows.append(
                CallSessionEvent(
                    call_session_id=pk(call),
                    consult_id=pk(c),
                    kind=CallEventKind.reconnected,
                    at=at + timedelta(minutes=4, seconds=20),
                )
            )
    rows.append(
        CallSessionEvent(
            call_session_id=pk(call),
            consult_id=pk(c),
            kind=CallEventKind.ended,
            at=call.ended_at or at,
        )
    )
    out.add_all(rows)


def _network_tests(
    out: Rows,
    rng: random.Random,
    facilities: list[Facility],
    clinician: User,
    start: datetime,
    end: datetime,
) -> None:
    links = list(NetworkRecommendation)
    for facility in facilities:
        usual = rng.choices(links, weights=(3, 3, 2, 1))[0]
        at = start
        while at < end:
            rec = usual if rng.random() < 0.7 else rng.choice(links)
            out.add(
                NetworkTest(
                    user_id=pk(clinician),
                    facility_id=pk(facility),
                    created_at=at,
                    connected=rec is not NetworkRecommendation.asynchronous,
                    recommendation=rec,
                    probes_sent=20,
                    probes_received=20,
                )
            )
            at += timedelta(days=rng.randint(10, 30))


def _offer(
    c: Consult,
    specialist: User,
    at: datetime,
    lasts: timedelta,
    answered: datetime,
    status: OfferStatus,
) -> ConsultOffer:
    """A past offer, answered: an accepted one names its consult, a declined one a reason."""
    accepted = status is OfferStatus.accepted
    return ConsultOffer(
        consult_id=pk(c),
        specialist_id=pk(specialist),
        offered_at=at,
        expires_at=at + lasts,
        responded_at=answered,
        status=status,
        accepted_consult_id=pk(c) if accepted else None,
        reason="" if accepted else "not available",
    )
