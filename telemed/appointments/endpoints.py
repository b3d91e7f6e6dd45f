"""Appointments JSON API: a consult's appointment, booking a time, rescheduling and
cancelling by either side, and the viewer's schedule."""

from __future__ import annotations

from fastapi import APIRouter

from telemed.appointments import changes, early, reads, service
from telemed.appointments.schemas import (
    AppointmentDetail,
    BookIn,
    CancelIn,
    RescheduleIn,
    ScheduleItem,
    StartNowOut,
)
from telemed.consults import service as consults
from telemed.consults.deps import CurrentConsult
from telemed.consults.models import ConsultState
from telemed.db import pk
from telemed.deps import CurrentUser, NowDep, PolicyDep, SessionDep, SettingsDep
from telemed.flows import consult_requested
from telemed.validation import Id
from telemed.web.access import (
    APPOINTMENT_BOOKERS,
    APPOINTMENT_READERS,
    APPOINTMENT_SIDES,
    CLINICIAN,
    COORDINATOR,
    SPECIALIST,
    Access,
)
from telemed.web.errors import error_responses

router = APIRouter(tags=["appointments"])

ERRORS = error_responses(401, 403, 404, 409, 422)


@router.get("/consults/{consult_id}/appointment", responses=ERRORS)
def get_appointment(
    consult: CurrentConsult, user: CurrentUser, db: SessionDep
) -> AppointmentDetail:
    """The consult's current (or last) appointment with its history: times in UTC; its
    calendar invitation is at ``ics_url``. 404 when it has none, or for anyone but its
    specialist, the requesting facility's clinicians and coordinators."""
    appointment = reads.for_consult(db, user, consult)
    consults.record_read(db, user, consult, "appointment")
    return reads.detail(db, appointment)


@router.post("/consults/{consult_id}/appointment", responses=ERRORS)
def book_time(
    consult: CurrentConsult,
    body: BookIn,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> AppointmentDetail:
    """Book a time (one slot long) for an accepted live consult that has no appointment
    yet: by its specialist, the requesting facility's clinicians or a coordinator.
    ``starts_at`` must carry its UTC offset and lie at least 5 minutes ahead (422); a time
    the specialist is already booked is refused with 409."""
    appointment = service.book_time(db, user, pk(consult), body.starts_at, now, settings)
    return reads.detail(db, appointment)


@router.post("/appointments/{appointment_id}/reschedule", responses=ERRORS)
def reschedule(
    appointment_id: Id,
    body: RescheduleIn,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> AppointmentDetail:
    """Move the appointment (same length), saying why: by its specialist or the requesting
    facility's clinicians. The invitation's SEQUENCE goes up, its UID stays; both sides
    are told with the updated invitation. 409 for a cancelled appointment, a clash with
    another of the specialist's appointments, or a stale ``sequence``."""
    appointment = changes.reschedule(
        db,
        user,
        appointment_id,
        body.starts_at,
        body.reason,
        now,
        expected_sequence=body.sequence,
        settings=settings,
        outside_confirmed=body.outside_confirmed,
    )
    return reads.detail(db, appointment)


@router.post("/appointments/{appointment_id}/start-now", responses=ERRORS)
def start_now(
    appointment_id: Id,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> StartNowOut:
    """Ask to start the session now, before its call opens. The first side's ask is
    recorded and the other side told; when the other side asks too the appointment moves
    to now (same length, new SEQUENCE, both sides told) and its call is open at once."""
    appointment, started = early.start_now(db, user, appointment_id, now, settings=settings)
    return StartNowOut(started=started, appointment=reads.detail(db, appointment))


@router.post("/appointments/{appointment_id}/cancel", responses=ERRORS)
def cancel(
    appointment_id: Id,
    body: CancelIn,
    user: CurrentUser,
    db: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    policy: PolicyDep,
) -> AppointmentDetail:
    """Cancel the appointment, saying why. By the specialist: the consult goes back to
    ``requested`` and is offered to another specialist. By a clinician: the consult
    request is cancelled. Both sides get a METHOD:CANCEL invitation."""
    appointment, consult = changes.cancel(
        db,
        user,
        appointment_id,
        body.reason,
        now,
        expected_sequence=body.sequence,
        settings=settings,
    )
    if consult.state == ConsultState.requested:
        consult_requested(db, consult, policy, now)
    return reads.detail(db, appointment)


@router.get("/appointments", responses=ERRORS)
def my_schedule(user: CurrentUser, db: SessionDep, now: NowDep) -> list[ScheduleItem]:
    """Scheduled appointments not over yet, soonest first: a specialist's own, a
    clinician's facility's, all of them for a coordinator."""
    return reads.schedule(db, user, now)


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {
    "get_appointment": APPOINTMENT_READERS,
    "book_time": APPOINTMENT_BOOKERS,
    "reschedule": APPOINTMENT_SIDES,
    "start_now": APPOINTMENT_SIDES,
    "cancel": APPOINTMENT_SIDES,
    "my_schedule": Access(
        CLINICIAN, SPECIALIST, COORDINATOR, scope="the appointments the user may see"
    ),
}
