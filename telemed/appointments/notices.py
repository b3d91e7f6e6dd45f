"""The messages telling both sides of an appointment that it was booked, moved or
cancelled, each with the invitation attached and every time in the recipient's own zone.

No patient text and no free-text reason leave the system here (they go out by e-mail and
SMS): the message names the consult and links to it, where the reason is shown.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.appointments.ics import Invitation, consult_path, consult_reference
from telemed.appointments.models import Appointment, ChangeAction
from telemed.consults import reasons
from telemed.consults.models import Consult
from telemed.i18n import gettext, use_language
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
    """(subject, body, sms) for one recipient, in the language in force (``send`` sets the
    recipient's)."""
    zone = recipient.timezone
    ref = consult_reference(consult)
    short = f"#{consult.id}"
    when = span(appointment, zone)
    start = local(appointment.starts_at, zone)
    by = gettext("by %(name)s") % {"name": actor.full_name} if actor else ""
    with_whom = (
        gettext("with %(name)s") % {"name": specialist.full_name}
        if recipient.id != specialist.id
        else ""
    )
    names = {"short": short, "ref": ref, "with": with_whom, "by": by, "when": when, "start": start}
    zone_note = gettext("Times are in your time zone, %(zone)s.") % {"zone": zone}
    if action == ChangeAction.booked:
        subject = gettext("Consult %(short)s: session booked for %(start)s") % names
        body = (
            gettext("The live session of consult %(ref)s %(with)s is booked %(by)s for %(when)s.")
            % names
            + "\n"
            + zone_note
            + " "
            + gettext("The calendar invitation is attached.")
        )
        sms = gettext("Telemed: consult %(short)s session booked for %(start)s.") % names
    elif action == ChangeAction.rescheduled:
        before = gettext("from %(time)s") % {"time": local(old_start, zone)} if old_start else ""
        subject = gettext("Consult %(short)s: session moved to %(start)s") % names
        body = (
            gettext(
                "The live session of consult %(ref)s %(with)s was moved %(by)s %(before)s to "
                "%(when)s."
            )
            % {**names, "before": before}
            + "\n"
            + zone_note
            + " "
            + gettext("The updated invitation is attached; the reason is on the consult page.")
        )
        sms = gettext("Telemed: consult %(short)s session moved to %(start)s.") % names
    else:
        after = (
            gettext("The consult goes back to the queue and will be offered to another specialist.")
            if specialist_cancelled
            else gettext("The consult request is cancelled.")
        )
        subject = gettext("Consult %(short)s: session of %(start)s cancelled") % names
        body = (
            gettext(
                "The live session of consult %(ref)s %(with)s planned for %(when)s was "
                "cancelled %(by)s."
            )
            % names
            + " "
            + after
            + "\n"
            + zone_note
            + " "
            + gettext(
                "The cancellation for your calendar is attached; the reason is on the consult page."
            )
        )
        sms = gettext("Telemed: consult %(short)s session of %(start)s cancelled.") % names
    body = re.sub(r" +([.,])", r"\1", re.sub(" {2,}", " ", body))
    return subject, body, sms


def send(
    session: Session,
    action: ChangeAction,
    appointment: Appointment,
    consult: Consult,
    invitation: Callable[[], Invitation],
    *,
    recipients: list[User],
    actor: User | None,
    specialist: User,
    now: datetime,
    old_start: datetime | None = None,
    specialist_cancelled: bool = False,
) -> int:
    """Queue the notice for each recipient (once per appointment version and recipient);
    in the caller's transaction. Returns how many were queued. ``invitation`` makes the
    ``.ics`` in the language in force: each recipient's calendar shows their own words."""
    queued = 0
    seen: set[int] = set()
    for user in recipients:
        if user.id is None or user.id in seen:
            continue
        seen.add(user.id)
        with use_language(user.language):  # the recipient's, not the actor's
            made = invitation()
            attachment = FileAttachment(made.filename, made.content_type, made.data)
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
    names = {"id": consult.id, "reason": reason}  # the reason translated where it is written
    for user in sides:
        with use_language(user.language):
            notify(
                session,
                user,
                kind="no_show",
                subject=gettext("Consult %(id)s: the live session did not take place") % names,
                body=gettext("The session of consult %(id)s was a no-show: %(reason)s.")
                % {**names, "reason": reasons.translate(reason)}
                + "\n"
                + gettext("Open the consult to book a new time or go on by messages."),
                dedupe_key=f"{key}:user{user.id}",
                link=f"/consults/{consult.id}",
                now=now,
            )
    notify_coordinators(
        session,
        kind="no_show",
        subject=lambda: gettext("Consult %(id)s: the live session did not take place") % names,
        body=lambda: (
            gettext("The session of consult %(id)s was a no-show: %(reason)s.")
            % {**names, "reason": reasons.translate(reason)}
        ),
        dedupe_key=key,
        link=f"/consults/{consult.id}",
        now=now,
    )


def early_asked(
    session: Session,
    appointment: Appointment,
    consult: Consult,
    *,
    asker: User,
    recipients: list[User],
    now: datetime,
) -> int:
    """The other side hears that ``asker`` would start the session now, by SMS too (a
    session starting now cannot wait for an e-mail to be read); agreeing is one button on
    the consult page."""
    queued = 0
    for user in recipients:
        with use_language(user.language):
            names = {
                "short": f"#{consult.id}",
                "name": asker.full_name,
                "start": local(appointment.starts_at, user.timezone),
            }
            queued += notify(
                session,
                user,
                kind="early_start",
                subject=gettext("Consult %(short)s: %(name)s asks to start now") % names,
                body=gettext(
                    "%(name)s is ready to start the session of consult %(short)s now instead "
                    'of %(start)s. Open the consult page and choose "Agree and start now".'
                )
                % names,
                dedupe_key=f"early:appointment{appointment.id}:seq{appointment.sequence}"
                f":user{user.id}",
                link=f"/consults/{consult.id}#appointment",
                sms=gettext("Telemed: %(name)s asks to start consult %(short)s now.") % names,
                now=now,
            )
    return queued
