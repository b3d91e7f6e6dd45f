"""Changes to a booked appointment: moved or cancelled by either side, ended by the
system (no-show, completed). Each is a row in ``appointment_changes``, an event on the
consult, an audit row and a notice to both sides with the updated invitation, all in the
one transaction of the change; the lock order is the bookings' (``service``)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from telemed.accounts.models import Role, User
from telemed.appointments import auth, caps, free_time, notices, repository, service
from telemed.appointments.models import (
    Appointment,
    AppointmentStatus,
    ChangeAction,
)
from telemed.audit.models import AuditAction
from telemed.consults import auth as consult_auth
from telemed.consults import reasons
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.models import (
    Consult,
    ConsultState,
    ParticipantRelation,
)
from telemed.db import pk
from telemed.errors import Conflict, NotFound, ValidationFailed
from telemed.i18n import N_
from telemed.offers import repository as offers_repository
from telemed.settings import Settings
from telemed.timefmt import local

# Changes by either side


def lock_for_change(
    session: Session, user: User, appointment_id: int, expected_sequence: int | None
) -> tuple[Appointment, Consult]:
    """The appointment and its consult, locked in that order, after the visibility (404)
    and side (403) checks; 409 if it changed since the caller saw ``expected_sequence``."""
    found = repository.get(session, appointment_id)
    if found is None:
        raise NotFound(
            N_("appointment %(appointment_id)s not found"), appointment_id=appointment_id
        )
    consult = consult_auth.get_visible_consult(session, user, found.consult_id)
    auth.ensure_side(user, consult, found)
    locked = consults_repository.lock_consult(session, found.consult_id)
    appointment = repository.get(session, appointment_id)  # re-read under the lock
    assert locked is not None
    assert appointment is not None
    if expected_sequence is not None and expected_sequence != appointment.sequence:
        raise Conflict(
            N_("the appointment was changed meanwhile (by the other side?); reload and try again")
        )
    return appointment, locked


def reschedule(
    session: Session,
    user: User,
    appointment_id: int,
    starts_at: datetime,
    reason: str,
    now: datetime,
    *,
    expected_sequence: int | None = None,
    settings: Settings,
    outside_confirmed: bool = False,
) -> Appointment:
    """Move a scheduled appointment to ``starts_at``, keeping its length. A time outside
    the specialist's availability is refused (409 ``outside_confirmed``) until the caller
    confirms it: the page then asks "book it anyway?" rather than book it silently."""
    if not reason.strip():
        raise ValidationFailed(N_("say why the appointment moves"), field="reason")
    with session.begin_nested():  # refused (409, 422): nothing changed
        appointment, consult = lock_for_change(session, user, appointment_id, expected_sequence)
        if appointment.status != AppointmentStatus.scheduled:
            raise Conflict(
                N_("a %(status)s appointment cannot be rescheduled"),
                status=appointment.status.replace("_", " "),
                field="status",
            )
        if consult.state != ConsultState.scheduled:
            raise Conflict(
                N_("the consult is %(state)s; its appointment cannot be moved now"),
                state=consult.state.replace("_", " "),
                field="state",
            )
        starts_at = free_time.check_new_start(starts_at, now)
        if starts_at == appointment.starts_at:
            raise ValidationFailed(N_("that is the appointment's current time"), field="starts_at")
        ends_at = starts_at + (appointment.ends_at - appointment.starts_at)
        move(
            session,
            user,
            appointment,
            consult,
            starts_at,
            ends_at,
            reason.strip(),
            now,
            settings=settings,
            outside_confirmed=outside_confirmed,
        )
    return appointment


def move(
    session: Session,
    user: User,
    appointment: Appointment,
    consult: Consult,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    now: datetime,
    *,
    settings: Settings,
    outside_confirmed: bool,
) -> None:
    """Move the (locked) appointment to ``[starts_at, ends_at)`` within the specialist's
    caps and free time (409 otherwise), and within their availability unless
    ``outside_confirmed`` (409 ``outside_confirmed``, asked after the clash so that a time
    that cannot be had is never confirmed first): a new SEQUENCE, a change row, the
    consult's event, an audit row and both sides told with the updated invitation."""
    old = (appointment.starts_at, appointment.ends_at)
    specialist = session.get(User, appointment.specialist_id)
    assert specialist is not None
    caps.ensure_fits(session, specialist, consult, starts_at, ends_at, actor=user, now=now)
    free_time.check_free(
        session,
        appointment.specialist_id,
        starts_at,
        ends_at,
        viewer=user,
        exclude_id=appointment.id,
    )
    if not outside_confirmed and not free_time.within_availability(
        session, specialist, starts_at, ends_at
    ):
        zone = free_time.viewer_zone(user)
        raise Conflict(
            N_(
                "%(starts)s is outside %(specialist)s's availability; confirm to "
                "reschedule to it anyway"
            ),
            starts=local(starts_at, zone),
            specialist=specialist.full_name,
            field="outside_confirmed",
        )
    appointment.starts_at, appointment.ends_at = starts_at, ends_at
    appointment.sequence += 1
    appointment.updated_at = now
    session.add(appointment)
    session.flush()
    service.record_change(
        session,
        appointment,
        user,
        ChangeAction.rescheduled,
        now,
        old=old,
        new=(starts_at, ends_at),
        reason=reason.strip(),
    )
    consults.record_fact(
        session,
        consult,
        user,
        reasons.english(reasons.RESCHEDULED_BY, name=user.full_name, reason=reason.strip()),
        now,
    )
    service.audit_change(
        session,
        user,
        AuditAction.update,
        appointment,
        consult,
        f"rescheduled to {starts_at.isoformat()} (sequence {appointment.sequence})",
    )
    service.tell_both_sides(
        session,
        settings,
        ChangeAction.rescheduled,
        appointment,
        consult,
        user,
        now,
        old_start=old[0],
    )


def cancel(
    session: Session,
    user: User,
    appointment_id: int,
    reason: str,
    now: datetime,
    *,
    expected_sequence: int | None = None,
    settings: Settings,
) -> tuple[Appointment, Consult]:
    """Cancel a scheduled appointment.

    The specialist cancelling gives the consult back: it returns to ``requested`` (the
    offers job offers it to someone else; they were offered it once, so never again to
    them) and they are no longer its assigned specialist. A clinician cancelling cancels
    the consult request itself."""
    if not reason.strip():
        raise ValidationFailed(N_("say why the appointment is cancelled"), field="reason")
    with session.begin_nested():  # refused (409, 422): nothing changed
        appointment, consult = lock_for_change(session, user, appointment_id, expected_sequence)
        if appointment.status != AppointmentStatus.scheduled:
            raise Conflict(
                N_("this appointment is already %(status)s"),
                status=appointment.status.replace("_", " "),
                field="status",
            )
        if consult.state != ConsultState.scheduled:
            raise Conflict(
                N_("the consult is %(state)s; its appointment cannot be cancelled now"),
                state=consult.state.replace("_", " "),
                field="state",
            )
        text = reason.strip()
        appointment.status = AppointmentStatus.cancelled
        appointment.sequence += 1
        appointment.updated_at = now
        session.add(appointment)
        session.flush()
        service.record_change(session, appointment, user, ChangeAction.cancelled, now, reason=text)
        by_specialist = user.role == Role.specialist
        if by_specialist:
            consults.transition(
                session,
                consult,
                ConsultState.requested,
                actor=user,
                reason=reasons.english(
                    reasons.CANCELLED_TO_ANOTHER, name=user.full_name, reason=text
                ),
                at=now,
            )
            _release(session, consult, user, text, now)
        else:
            consults.transition(
                session,
                consult,
                ConsultState.cancelled,
                actor=user,
                reason=reasons.english(
                    reasons.CANCELLED_WITH_REQUEST, name=user.full_name, reason=text
                ),
                at=now,
            )
        service.audit_change(
            session,
            user,
            AuditAction.update,
            appointment,
            consult,
            f"cancelled (sequence {appointment.sequence})",
        )
        service.tell_both_sides(
            session,
            settings,
            ChangeAction.cancelled,
            appointment,
            consult,
            user,
            now,
            specialist_cancelled=by_specialist,
        )
    return appointment, consult


def _release(
    session: Session, consult: Consult, specialist: User, reason: str, at: datetime
) -> None:
    """The specialist gives the consult back: their accepted offer is withdrawn (so that
    another specialist's acceptance can win), they lose the assigned relation (its call,
    its specialist's note) and keep an offered one (they may still read what they saw)."""
    consult_id, user_id = pk(consult), pk(specialist)
    offers_repository.release_accepted(
        session, consult_id, at, reasons.english(reasons.SPECIALIST_CANCELLED, reason=reason)
    )
    # They keep their ``offered`` relation: they may still read the consult they worked
    # on, and are not offered it again; the call and the specialist's note go.
    consults_repository.drop_participant(session, consult_id, user_id, ParticipantRelation.assigned)
    if not offers_repository.has_participant(
        session, consult_id, user_id, ParticipantRelation.offered
    ):
        consults.add_participant(session, consult, specialist, ParticipantRelation.offered)


# Ends decided by the system (the appointments job)


def mark_no_show(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    reason: str,
    now: datetime,
    *,
    sides: list[User],
) -> None:
    """Nobody (or only one side) came: the consult becomes ``no_show`` and the appointment
    too, with a change row, an audit row and a notice to both ``sides`` and the
    coordinators, like any cancellation (the actor is the system). In the caller's
    transaction."""
    consults.transition(session, consult, ConsultState.no_show, actor=None, reason=reason, at=now)
    _end(
        session, appointment, consult, AppointmentStatus.no_show, ChangeAction.no_show, now, reason
    )
    notices.no_show(session, appointment, consult, reason, sides=sides, now=now)


def mark_completed(
    session: Session, appointment: Appointment, consult: Consult, now: datetime
) -> None:
    """The session was held (or the consult moved on by other means) and its slot is
    over: the appointment is ``completed``, with a change row and an audit row. In the
    caller's transaction."""
    _end(
        session,
        appointment,
        consult,
        AppointmentStatus.completed,
        ChangeAction.completed,
        now,
        "",
    )


def _end(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    status: AppointmentStatus,
    action: ChangeAction,
    now: datetime,
    reason: str,
) -> None:
    appointment.status = status
    appointment.updated_at = now
    session.add(appointment)
    session.flush()
    service.record_change(session, appointment, None, action, now, reason=reason)
    service.audit_change(
        session,
        None,
        AuditAction.update,
        appointment,
        consult,
        f"{status.replace('_', ' ')} (system)",
    )
