"""The follow-up job: a finished consult whose signed note asks for a follow-up on or
before today (Maseru) moves to ``follow_up_due`` and the requesting clinician is told.

Idempotent by database state: the consult's move out of ``completed`` /
``answered_async`` is what makes a repeated run do nothing.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import reasons
from telemed.consults import repository as consults_repository
from telemed.consults import service as consults
from telemed.consults.models import ConsultState
from telemed.db import pk
from telemed.i18n import gettext, use_language
from telemed.notes import repository
from telemed.notifications.service import notify
from telemed.settings import Settings
from telemed.timefmt import format_day
from telemed.uow import Units

log = logging.getLogger(__name__)

FINISHED = (ConsultState.completed, ConsultState.answered_async)


def today(settings: Settings, now: datetime) -> date:
    """The date in the clinicians' zone (``settings.clinician_timezone``) at ``now``."""
    return now.astimezone(ZoneInfo(settings.clinician_timezone)).date()


def follow_ups_due(units: Units, settings: Settings, now: datetime) -> list[int]:
    """Returns the consult ids moved to ``follow_up_due``; each consult is a unit of work of
    its own, so one that fails is rolled back and logged and the others go on."""
    with units.one() as session:
        due = [
            (note.consult_id, pk(note), note.follow_up_on)
            for note, _case in repository.follow_ups(session, None, today(settings, now))
        ]
    moved = []
    for consult_id, note_id, follow_up_on in due:
        done = units.attempt(
            f"marking the follow-up of consult {consult_id} failed",
            log,
            _follow_up,
            consult_id,
            note_id,
            follow_up_on,
            now,
        )
        if done:
            moved.append(consult_id)
    return moved


def _follow_up(
    session: Session, consult_id: int, note_id: int, follow_up_on: date | None, now: datetime
) -> bool:
    consult = consults_repository.get_consult(session, consult_id)
    if consult is None or consult.state not in FINISHED:
        return False
    consults.transition(
        session,
        consult,
        ConsultState.follow_up_due,
        actor=None,
        reason=reasons.english(reasons.FOLLOW_UP_DUE, day=follow_up_on),
        at=now,
    )
    clinician = session.get(User, consult.created_by_id)
    if clinician is not None:
        with use_language(clinician.language):
            names = {"id": consult.id, "day": format_day(follow_up_on)}
            subject = gettext("Follow-up due: consult %(id)s") % names
            body = (
                gettext(
                    "The specialist asked for a follow-up of consult %(id)s on %(day)s. "
                    "Record the outcome on the consult."
                )
                % names
            )
        notify(
            session,
            clinician,
            kind="follow_up_due",
            subject=subject,
            body=body,
            dedupe_key=f"follow_up_due:consult{consult.id}:note{note_id}",
            link=f"/consults/{consult.id}",
            now=now,
        )
    return True
