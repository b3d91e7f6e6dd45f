"""The messages telling both sides of an appointment that it was booked, moved or
cancelled, each with the invitation attached and every time in the recipient's own zone.

No patient text and no free-text reason leave the system here (they go out by e-mail and
SMS): the message names the consult and links to it, where the reason is shown.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.appointments.ics import Invitation, consult_path, consult_reference
from telemed.appointments.models import Appointment, ChangeAction
from telemed.consults.models import Consult
from telemed.notifications.service import FileAttachment, notify, notify_coordinators
from telemed.timefmt import local


def span(appointment: Appointment, zone: str) -> str:
    start = appointment.starts_at.astimezone(ZoneInfo(zone))
    end = appointment.ends_at.astimezone(ZoneInfo(zone))
    end_fmt = "%H:%M" if end.date() == start.date() else "%a %d %b %Y %H:%M"
    until = local(appointment.ends_at, zone, end_fmt)
    return f"{local(appointment.starts_at, zone)} \N{EN DASH} {until}"


def compose(
    action: ChangeAction,
    appointment: Appointment,
    consult: Consult,
    *,
    recipient: User,
    actor: User | None,
    specialist: User,
    old_start: datetime | None = None,
    specialist_cancelled: bool = False,
) -> tuple[str, str, str]:
    """(subject, body, sms) for one recipient."""
    zone = recipient.timezone
    ref = consult_reference(consult)
    short = f"#{consult.id}"
    when = span(appointment, zone)
    by = f" by {actor.full_name}" if actor else ""
    with_whom = f"with {specialist.full_name}" if recipient.id != specialist.id else ""
    zone_note = f"Times are in your time zone, {zone}."
    if action == ChangeAction.booked:
        subject = f"Consult {short}: session booked for {local(appointment.starts_at, zone)}"
        body = (
            f"The live session of consult {ref} {with_whom} is booked{by} for {when}.\n"
            f"{zone_note} The calendar invitation is attached."
        )
        sms = f"Telemed: consult {short} session booked for {local(appointment.starts_at, zone)}."
    elif action == ChangeAction.rescheduled:
        before = f" from {local(old_start, zone)}" if old_start else ""
        subject = f"Consult {short}: session moved to {local(appointment.starts_at, zone)}"
        body = (
            f"The live session of consult {ref} {with_whom} was moved{by}{before} to {when}.\n"
            f"{zone_note} The updated invitation is attached; the reason is on the consult page."
        )
        sms = f"Telemed: consult {short} session moved to {local(appointment.starts_at, zone)}."
    else:
        after = (
            "The consult goes back to the queue and will be offered to another specialist."
            if specialist_cancelled
            else "The consult request is cancelled."
        )
        subject = f"Consult {short}: session of {local(appointment.starts_at, zone)} cancelled"
        body = (
            f"The live session of consult {ref} {with_whom} planned for {when} was "
            f"cancelled{by}. {after}\n"
            f"{zone_note} The cancellation for your calendar is attached; the reason is on "
            "the consult page."
        )
        sms = f"Telemed: consult {short} session of {local(appointment.starts_at, zone)} cancelled."
    return subject, re.sub(" {2,}", " ", body), sms


def send(
    session: Session,
    action: ChangeAction,
    appointment: Appointment,
    consult: Consult,
    invitation: Invitation,
    *,
    recipients: list[User],
    actor: User | None,
    specialist: User,
    now: datetime,
    old_start: datetime | None = None,
    specialist_cancelled: bool = False,
) -> int:
    """Queue the notice for each recipient (once per appointment version and recipient);
    in the caller's transaction. Returns how many were queued."""
    attachment = FileAttachment(invitation.filename, invitation.content_type, invitation.data)
    queued = 0
    seen: set[int] = set()
    for user in recipients:
        if user.id is None or user.id in seen:
            continue
        seen.add(user.id)
        subject, body, sms = compose(
            action,
            appointment,
            consult,
            recipient=user,
            actor=actor,
            specialist=specialist,
            old_start=old_start,
            specialist_cancelled=specialist_cancelled,
        )
        queued += notify(
            session,
            user,
            kind=f"appointment_{action.value}",
            subject=subject,
            body=body,
            dedupe_key=f"appointment:{appointment.id}:seq{appointment.sequence}:user{user.id}",
            link=consult_path(consult),
            attachments=(attachment,),
            sms=sms,
            now=now,
        )
    return queued


def no_show(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    reason: str,
    *,
    sides: list[User],
    now: datetime,
) -> None:
    """Both sides and the coordinators hear that the live session did not take place
    (once per appointment version). The reason names people, never the patient."""
    key = f"no_show:appointment{appointment.id}:seq{appointment.sequence}"
    subject = f"Consult {consult.id}: the live session did not take place"
    body = f"The session of consult {consult.id} was a no-show: {reason}."
    for user in sides:
        notify(
            session,
            user,
            kind="no_show",
            subject=subject,
            body=body + "\nOpen the consult to book a new time or go on by messages.",
            dedupe_key=f"{key}:user{user.id}",
            link=f"/consults/{consult.id}",
            now=now,
        )
    notify_coordinators(
        session,
        kind="no_show",
        subject=subject,
        body=body,
        dedupe_key=key,
        link=f"/consults/{consult.id}",
        now=now,
    )
