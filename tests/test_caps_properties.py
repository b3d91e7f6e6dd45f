"""Property: no sequence of offer runs, requests, accepts, hand assignments, reschedules,
cancellations and passing time ever books a specialist past either weekly cap, in any
ISO week of theirs. On SQLite only (the races are tests/test_caps.py's, on both
databases), with a bounded number of examples so that it stays well under a minute."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from scheduling import iso_week
from telemed.accounts.models import Role, User
from telemed.appointments.models import Appointment, AppointmentStatus
from telemed.consults.models import Consult, ConsultState
from telemed.directory.models import SpecialistProfile
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.offers.policy import OfferPolicy
from telemed.settings import Settings
from telemed.uow import Units
from tests.conftest import LoginFn
from tests.directory_helpers import Specialists
from tests.helpers import ApiClient, ManualClock, Users, consult_payload
from tests.test_caps import set_caps, wednesday_morning
from tests.test_offers import due

ZONES = ("Africa/Johannesburg", "Europe/London", "America/Toronto")
STEPS = ("request", "run", "accept", "assign", "reschedule", "cancel", "advance")
ROUND = timedelta(weeks=6)  # each example starts past everything the last one booked


@dataclass
class World:
    db: Session
    units: Units
    policy: OfferPolicy
    clock: ManualClock
    doctors: list[ApiClient]
    nurse: ApiClient
    coordinator: ApiClient
    since: datetime = field(default_factory=lambda: wednesday_morning(ZONES[0]))

    def open_offers(self) -> list[ConsultOffer]:
        self.db.rollback()
        return list(
            self.db.exec(
                select(ConsultOffer)
                .where(ConsultOffer.status == OfferStatus.open)
                .order_by(col(ConsultOffer.id))
            )
        )

    def scheduled(self) -> list[Appointment]:
        self.db.rollback()
        return list(
            self.db.exec(
                select(Appointment)
                .where(Appointment.status == AppointmentStatus.scheduled)
                .order_by(col(Appointment.id))
            )
        )

    def waiting(self) -> list[int]:
        self.db.rollback()
        states = [ConsultState.requested, ConsultState.escalated, ConsultState.offered]
        found = self.db.exec(
            select(Consult.id).where(col(Consult.state).in_(states)).order_by(col(Consult.id))
        )
        return [consult_id for consult_id in found if consult_id is not None]

    def doctor(self, user_id: int) -> ApiClient:
        return next(d for d in self.doctors if d.user.id == user_id)

    def step(self, name: str, k: int) -> None:
        """One step; a refusal (409, 422) is a possible outcome, never a 500."""
        status = 200
        if name == "request":
            urgency = ("urgent", "routine", "emergency")[k % 3]
            status = self.nurse.post(
                "/api/v1/consults", consult_payload(urgency=urgency)
            ).status_code
        elif name == "run":
            assert due(self.units, self.db, self.clock.now(), self.policy).failed == []
        elif name == "accept" and (offers := self.open_offers()):
            offer = offers[k % len(offers)]
            status = (
                self.doctor(offer.specialist_id)
                .post(f"/api/v1/offers/{offer.id}/accept")
                .status_code
            )
        elif name == "assign" and (waiting := self.waiting()):
            doctor = self.doctors[k % len(self.doctors)]
            start = self.clock.now() + timedelta(hours=1 + k % 40)  # mostly this week
            status = self.coordinator.post(
                f"/api/v1/consults/{waiting[k % len(waiting)]}/assign",
                {"specialist_id": doctor.user.id, "starts_at": start.isoformat()},
            ).status_code
        elif name == "reschedule" and (booked := self.scheduled()):
            appointment = booked[k % len(booked)]
            start = self.clock.now() + timedelta(minutes=30 * (1 + k % 80))
            status = (
                self.doctor(appointment.specialist_id)
                .post(
                    f"/api/v1/appointments/{appointment.id}/reschedule",
                    {"starts_at": start.isoformat(), "reason": "clinic overran"},
                )
                .status_code
            )
        elif name == "cancel" and (booked := self.scheduled()):
            appointment = booked[k % len(booked)]
            who = self.doctor(appointment.specialist_id) if k % 2 else self.nurse
            status = who.post(
                f"/api/v1/appointments/{appointment.id}/cancel", {"reason": "unwell"}
            ).status_code
        elif name == "advance":
            self.clock.advance(timedelta(hours=1 + k % 36))
        assert status in (200, 201, 409, 422), (name, status)

    def check(self) -> None:
        """Every specialist's holdings per ISO week of theirs within both caps, counted
        here from the rows: appointments not cancelled; accepted consults (not cancelled)
        without an appointment with them, at the offered slot or the acceptance."""
        self.db.rollback()
        for doctor in self.doctors:
            user_id = doctor.user.id
            profile = self.db.get(SpecialistProfile, user_id, populate_existing=True)
            assert profile is not None
            zone = doctor.user.timezone
            weeks: dict[tuple[int, int], list[timedelta]] = defaultdict(list)
            appointments = self.db.exec(
                select(Appointment).where(
                    Appointment.specialist_id == user_id,
                    col(Appointment.status) != AppointmentStatus.cancelled,
                    col(Appointment.starts_at) >= self.since,
                )
            ).all()
            with_time = {a.consult_id for a in appointments}
            for a in appointments:
                weeks[iso_week(a.starts_at, zone)].append(a.ends_at - a.starts_at)
            accepted = self.db.exec(
                select(ConsultOffer, Consult)
                .join(Consult, col(Consult.id) == col(ConsultOffer.consult_id))
                .where(
                    ConsultOffer.specialist_id == user_id,
                    ConsultOffer.status == OfferStatus.accepted,
                    col(Consult.state) != ConsultState.cancelled,
                )
            ).all()
            for offer, consult in accepted:
                placed = offer.slot_start or offer.responded_at
                if consult.id in with_time or placed is None or placed < self.since:
                    continue
                length = (offer.slot_end - placed) if offer.slot_end else timedelta(0)
                weeks[iso_week(placed, zone)].append(length)
            for week, lengths in weeks.items():
                if profile.weekly_cap is not None:
                    assert len(lengths) <= profile.weekly_cap, (user_id, week, lengths)
                if profile.weekly_cap_minutes is not None:
                    minutes = sum(lengths, timedelta(0)) / timedelta(minutes=1)
                    assert minutes <= profile.weekly_cap_minutes, (user_id, week, lengths)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Sessions that outlive the examples' months of pinned time: one login each."""
    return settings.model_copy(update={"session_hours": 24 * 365})


@pytest.fixture
def specialists(db: Session, settings: Settings, users: Users) -> Specialists:
    return Specialists(db, settings, users)


CAPS = st.tuples(  # small caps mostly: where a booking path that forgot them shows
    st.sampled_from([None, 0, 1, 1, 2]),
    st.sampled_from([None, 0.5, 0.5, 1.0]),
)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_no_sequence_books_past_either_cap(
    specialists: Specialists,
    db: Session,
    units: Units,
    users: Users,
    login: LoginFn,
    clock: ManualClock,
    policy: OfferPolicy,
) -> None:
    volunteers: list[User] = [specialists.make(time_zone=zone) for zone in ZONES]
    world = World(
        db,
        units,
        policy,
        clock,
        [login(v) for v in volunteers],
        login(users.make(Role.clinician)),
        login(specialists.coordinator),
    )
    world.since -= ROUND

    @examples(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        caps=st.lists(CAPS, min_size=len(ZONES), max_size=len(ZONES)),
        steps=st.lists(
            st.tuples(st.sampled_from(STEPS), st.integers(0, 999)), min_size=3, max_size=8
        ),
    )
    def sequence(caps: list[tuple[int | None, float | None]], steps: list[tuple[str, int]]) -> None:
        world.since += ROUND
        clock.set(world.since)
        for doctor, (consults, hours) in zip(world.doctors, caps, strict=True):
            assert set_caps(doctor, consults=consults, hours=hours).status_code == 200
        for name, k in steps:
            world.step(name, k)
            world.check()

    sequence()
