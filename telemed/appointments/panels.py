"""The appointment section of the consult page (``templates/_appointment.html``): the
current appointment in the viewer's time and the other side's, its history, and what the
viewer may do with it. Not a view: the consult page's builder imports it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import Session

from telemed.accounts import repository as accounts_repository
from telemed.accounts.models import User
from telemed.appointments import auth, early, repository, service
from telemed.appointments.models import Appointment, AppointmentChange, AppointmentStatus
from telemed.consults.models import Consult, ConsultState
from telemed.db import pk
from telemed.settings import Settings
from telemed.timefmt import local


@dataclass(frozen=True)
class ChangeLine:
    change: AppointmentChange
    actor_name: str


@dataclass(frozen=True)
class AppointmentPanel:
    """What the consult page shows about the consult's appointment."""

    current: Appointment | None
    specialist_name: str
    booked_by: str
    other_side: list[tuple[str, str, str]]  # (who, their local time, their zone)
    changes: list[ChangeLine] = field(default_factory=list)
    is_side: bool = False  # the specialist or a facility clinician: gets the .ics
    can_change: bool = False
    can_book: bool = False
    # "Start now" (``appointments.early``): offered to a side before the call opens
    can_start_now: bool = False
    asked_start_now: bool = False  # this viewer asked; waiting for the other side
    other_asked_start_now: bool = False  # the other side asked; the button agrees

    @property
    def visible(self) -> bool:
        return self.current is not None or self.can_book


def panel(
    db: Session, user: User, consult: Consult, now: datetime, settings: Settings
) -> AppointmentPanel | None:
    """The consult page's appointment section, or None when there is nothing to show."""
    if not service.is_live(consult):
        return None
    appointment = repository.latest_for_consult(db, pk(consult))
    bookable = (
        consult.state in service.BOOKABLE_STATES
        and (appointment is None or appointment.status != AppointmentStatus.scheduled)
        and auth.can_book(db, user, consult)
    )
    if appointment is None or not auth.can_see(user, consult, appointment):
        return AppointmentPanel(None, "", "", [], can_book=True) if bookable else None
    changes = repository.changes_of(db, pk(appointment))
    people = accounts_repository.users_by_id(
        db,
        {appointment.specialist_id, consult.created_by_id}
        | {c.actor_id for c in changes if c.actor_id is not None},
    )
    specialist = people.get(appointment.specialist_id)
    clinician = people.get(consult.created_by_id)
    mine = local(appointment.starts_at, user.timezone)
    other_side = []  # the other side's clock, when it reads differently from the viewer's
    for person in (specialist, clinician):
        if person is not None and person.id != user.id:
            at = local(appointment.starts_at, person.timezone)
            if at != mine:
                other_side.append((person.full_name, at, person.timezone))
    lines = [
        ChangeLine(c, people[c.actor_id].full_name if c.actor_id in people else "system")
        for c in changes
    ]
    is_side = auth.is_side(user, consult, appointment)
    open_before = timedelta(minutes=settings.call_open_before_minutes)
    can_start = is_side and early.may_ask(appointment, consult, now, open_before)
    asks = early.asks(db, appointment) if can_start else None
    return AppointmentPanel(
        current=appointment,
        specialist_name=specialist.full_name if specialist else "",
        booked_by=lines[0].actor_name if lines else "",
        other_side=other_side,
        changes=lines,
        is_side=is_side,
        can_change=appointment.status == AppointmentStatus.scheduled
        and consult.state == ConsultState.scheduled
        and auth.is_side(user, consult, appointment),
        can_book=bookable,
        can_start_now=can_start,
        asked_start_now=asks is not None and asks.asked_by(user, appointment),
        other_asked_start_now=asks is not None and asks.other_asked(user, appointment),
    )
