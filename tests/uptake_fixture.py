"""A small fixed history whose uptake numbers are worked out by hand in the tests.

Times are UTC; Maseru is UTC+2 all year. Consult 2 is requested at 23:59 on 31 October in
Maseru (October), consult 3 at 00:30 on 1 November in Maseru (November), although both are
31 October in UTC: the calendar boundary at Maseru midnight.

| consult | facility (district) | specialty, urgency | story |
| 1 | QMMH (MS) | paediatrics, urgent | req 10 Oct 08:00; S1 declines 09:00, S2 accepts 10:00;
|   |           |                     | call 11 Oct 08:00-08:30 (low mode, a drop); treated locally;
|   |           |                     | note signed 11 Oct 09:05, follow-up 20 Nov (outcome before: not done)
| 2 | MAFETENG (MF) | internal_medicine, routine | req 31 Oct 21:59; offer 22:00; S2 accepts
|   |               |                | 1 Nov 02:00; answered async 2 Nov 08:00; referred, corrected
|   |               |                | to referral avoided; note 2 Nov 09:00, follow-up 25 Nov, done
| 3 | BEREA (BE) | paediatrics, emergency | req 31 Oct 22:30; escalated 1 Nov 10:00;
|   |            |                        | cancelled 2 Nov 10:00
| 4 | QMMH (MS) | internal_medicine, urgent | req 15 Nov 10:00; offer 10:05, S1 accepts
|   |           |                           | 11:00; no-show 16 Nov 10:15
| 5 | QMMH | paediatrics, routine | a draft, never requested
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, select

from telemed.accounts.models import Role, User
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
from telemed.db import pk
from telemed.facilities.models import Facility
from telemed.notes.models import ConsultNote, ConsultOutcome, NoteStatus, Outcome
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.precall.models import NetworkRecommendation, NetworkTest
from telemed.sessions.models import CallEventKind, CallSession, CallSessionEvent
from tests.helpers import Users

S = ConsultState
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def t(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Fixture:
    clinician: User
    s1: User
    s2: User
    consults: list[Consult]


def build(db: Session, users: Users) -> Fixture:
    clinician = users.make(Role.clinician, facility="QMMH")
    s1, s2 = users.make(Role.specialist), users.make(Role.specialist)
    fac = {f.code: f for f in db.exec(select(Facility))}

    def consult(
        n: int, code: str, specialty: str, urgency: Urgency, at: datetime | None
    ) -> Consult:
        case = Case(
            patient_ref=f"FX-{n}",
            age_years=30,
            sex=Sex.female,
            facility_id=pk(fac[code]),
            created_by_id=pk(clinician),
        )
        db.add(case)
        db.flush()
        c = Consult(
            case_id=pk(case),
            facility_id=pk(fac[code]),
            specialty=specialty,
            urgency=urgency,
            mode=ConsultMode.video,
            language=Language.english,
            question="?",
            created_by_id=pk(clinician),
            requested_at=at,
            state=S.requested if at else S.draft,
        )
        db.add(c)
        db.flush()
        return c

    c1 = consult(1, "QMMH", "paediatrics", Urgency.urgent, t(10, 10, 8))
    c2 = consult(2, "MAFETENG", "internal_medicine", Urgency.routine, t(10, 31, 21, 59))
    c3 = consult(3, "BEREA", "paediatrics", Urgency.emergency, t(10, 31, 22, 30))
    c4 = consult(4, "QMMH", "internal_medicine", Urgency.urgent, t(11, 15, 10))
    c5 = consult(5, "QMMH", "paediatrics", Urgency.routine, None)

    def ev(c: Consult, to: ConsultState, at: datetime) -> None:
        db.add(ConsultEvent(consult_id=pk(c), at=at, to_state=to))

    def offer(c: Consult, s: User, at: datetime, answered: datetime, status: OfferStatus) -> None:
        db.add(
            ConsultOffer(
                consult_id=pk(c),
                specialist_id=pk(s),
                offered_at=at,
                expires_at=at + timedelta(hours=12),
                responded_at=answered,
                status=status,
                accepted_consult_id=pk(c) if status is OfferStatus.accepted else None,
            )
        )

    # 1
    offer(c1, s1, t(10, 10, 8, 10), t(10, 10, 9), OfferStatus.declined)
    offer(c1, s2, t(10, 10, 9, 10), t(10, 10, 10), OfferStatus.accepted)
    ev(c1, S.requested, t(10, 10, 8))
    ev(c1, S.offered, t(10, 10, 8, 10))
    ev(c1, S.accepted, t(10, 10, 10))
    ev(c1, S.scheduled, t(10, 10, 10))
    ev(c1, S.in_session, t(10, 11, 8))
    ev(c1, S.completed, t(10, 11, 8, 30))
    db.add(
        Appointment(
            consult_id=pk(c1),
            specialist_id=pk(s2),
            starts_at=t(10, 11, 8),
            ends_at=t(10, 11, 8, 30),
            status=AppointmentStatus.completed,
        )
    )
    call = CallSession(
        consult_id=pk(c1),
        room="fx-1",
        started_at=t(10, 11, 8),
        ended_at=t(10, 11, 8, 30),
        duration_s=1800,
    )
    db.add(call)
    db.flush()
    for kind, at, detail in (
        (CallEventKind.joined, t(10, 11, 8), ""),
        (CallEventKind.media, t(10, 11, 8, 5), '{"mode":"low"}'),
        (CallEventKind.reconnecting, t(10, 11, 8, 10), ""),
    ):
        db.add(
            CallSessionEvent(
                call_session_id=pk(call), consult_id=pk(c1), kind=kind, at=at, detail=detail
            )
        )
    db.add(
        ConsultOutcome(
            consult_id=pk(c1),
            outcome=Outcome.treated_locally,
            recorded_by_id=pk(s2),
            recorded_at=t(10, 11, 9),
        )
    )
    db.add(
        ConsultNote(
            consult_id=pk(c1),
            series_id="fx-1",
            author_id=pk(s2),
            author_role="specialist",
            status=NoteStatus.signed,
            follow_up_on=date(2026, 11, 20),
            signed_at=t(10, 11, 9, 5),
        )
    )
    # 2
    offer(c2, s2, t(10, 31, 22), t(11, 1, 2), OfferStatus.accepted)
    ev(c2, S.requested, t(10, 31, 21, 59))
    ev(c2, S.offered, t(10, 31, 22))
    ev(c2, S.accepted, t(11, 1, 2))
    ev(c2, S.answered_async, t(11, 2, 8))
    db.add(
        ConsultOutcome(
            consult_id=pk(c2),
            outcome=Outcome.referred,
            recorded_by_id=pk(s2),
            recorded_at=t(11, 2, 10),
        )
    )
    db.flush()
    db.add(
        ConsultOutcome(
            consult_id=pk(c2),
            outcome=Outcome.referral_avoided,
            recorded_by_id=pk(s2),
            recorded_at=t(11, 2, 11),
        )
    )
    db.add(
        ConsultNote(
            consult_id=pk(c2),
            series_id="fx-2",
            author_id=pk(s2),
            author_role="specialist",
            status=NoteStatus.signed,
            follow_up_on=date(2026, 11, 25),
            signed_at=t(11, 2, 9),
        )
    )
    # 3
    ev(c3, S.requested, t(10, 31, 22, 30))
    ev(c3, S.escalated, t(11, 1, 10))
    ev(c3, S.cancelled, t(11, 2, 10))
    # 4
    offer(c4, s1, t(11, 15, 10, 5), t(11, 15, 11), OfferStatus.accepted)
    ev(c4, S.requested, t(11, 15, 10))
    ev(c4, S.accepted, t(11, 15, 11))
    ev(c4, S.no_show, t(11, 16, 10, 15))
    # network tests
    for code, at, rec in (
        ("QMMH", t(10, 5, 9), NetworkRecommendation.normal),
        ("QMMH", t(11, 5, 9), NetworkRecommendation.low),
        ("BEREA", t(11, 6, 9), NetworkRecommendation.audio_only),
    ):
        db.add(
            NetworkTest(
                user_id=pk(clinician),
                facility_id=pk(fac[code]),
                created_at=at,
                connected=True,
                recommendation=rec,
            )
        )
    db.commit()
    return Fixture(clinician, s1, s2, [c1, c2, c3, c4, c5])
