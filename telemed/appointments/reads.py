"""Reading appointments: a consult's, the schedule, the calendar invitation. Each read
of a clinical record is audited here, as the consult's are."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import Role, User
from telemed.appointments import auth, ics, repository
from telemed.appointments.models import Appointment
from telemed.appointments.schemas import (
    AppointmentDetail,
    AppointmentPublic,
    ChangePublic,
    ScheduleItem,
)
from telemed.appointments.service import invitation
from telemed.audit import service as audit
from telemed.audit.models import AuditAction
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.errors import Forbidden, NotFound
from telemed.i18n import N_
from telemed.settings import Settings


def for_consult(session: Session, user: User, consult: Consult) -> Appointment:
    """The consult's current (or last) appointment, for those who may see it (else 404)."""
    appointment = repository.latest_for_consult(session, pk(consult))
    if appointment is None:
        raise NotFound(N_("consult %(consult_id)s has no appointment"), consult_id=consult.id)
    auth.ensure_can_see(user, consult, appointment)
    return appointment


def invitation_for(
    session: Session, settings: Settings, user: User, consult: Consult, now: datetime
) -> ics.Invitation:
    """The ``.ics`` of the consult's appointment for one of its two sides (audited read)."""
    appointment = repository.latest_for_consult(session, pk(consult))
    if appointment is None or not auth.is_side(user, consult, appointment):
        raise NotFound(
            N_("consult %(consult_id)s has no appointment invitation for you"),
            consult_id=consult.id,
        )
    audit.record_access(
        session,
        user,
        AuditAction.download,
        "appointment",
        pk(appointment),
        case_id=consult.case_id,
        consult_id=consult.id,
        detail=f"calendar invitation, sequence {appointment.sequence}",
    )
    return invitation(session, settings, appointment, consult, now)


def upcoming_for(session: Session, user: User, now: datetime) -> list[tuple[Appointment, Consult]]:
    """The schedule: a specialist's own appointments, a clinician's facility's, every
    appointment for a coordinator; scheduled ones not over yet, soonest first."""
    since = now - timedelta(hours=1)
    if user.role == Role.specialist:
        return repository.upcoming(session, since, specialist_id=pk(user))
    if user.role == Role.clinician and user.facility_id is not None:
        return repository.upcoming(session, since, facility_id=user.facility_id)
    if user.role == Role.coordinator:
        return repository.upcoming(session, since)
    raise Forbidden(N_("the schedule is for specialists, clinicians and coordinators"))


def ics_path(consult_id: int) -> str:
    return f"/consults/{consult_id}/appointment.ics"


def detail(session: Session, appointment: Appointment) -> AppointmentDetail:
    specialist = session.get(User, appointment.specialist_id)
    return AppointmentDetail(
        **AppointmentPublic.model_validate(appointment).model_dump(),
        specialist_name=specialist.full_name if specialist else "",
        ics_url=ics_path(appointment.consult_id),
        changes=[
            ChangePublic.model_validate(c) for c in repository.changes_of(session, pk(appointment))
        ],
    )


def schedule(session: Session, user: User, now: datetime) -> list[ScheduleItem]:
    rows = upcoming_for(session, user, now)
    people = accounts_repository.users_by_id(session, {a.specialist_id for a, _ in rows})
    names = {user_id: person.full_name for user_id, person in people.items()}
    if rows:
        audit.record_access(
            session,
            user,
            AuditAction.list,
            "appointment",
            "schedule",
            detail="consults " + ",".join(str(c.id) for _, c in rows),
        )
    return [
        ScheduleItem(
            **AppointmentPublic.model_validate(a).model_dump(),
            specialty=c.specialty,
            mode=c.mode,
            urgency=c.urgency,
            consult_state=c.state,
            facility_id=c.facility_id,
            specialist_name=names.get(a.specialist_id, ""),
            ics_url=ics_path(pk(c)),
        )
        for a, c in rows
    ]
