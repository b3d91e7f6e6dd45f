"""Jobs that keep the care going: follow-ups falling due, and the coordinators' morning.

``follow_ups_due`` moves a finished consult whose signed note asks for a follow-up on or
before today (Maseru) to ``follow_up_due`` and tells the requesting clinician; the state
change is what makes a repeated run do nothing. ``daily_digest`` writes each coordinator
one summary a day (dedupe key by date) and ``reverification_reminders`` warns specialists
whose registration expires soon, once per expiry date. Each consult, digest and specialist
is a unit of work of its own (``units.item``): one that fails is logged, the rest go on.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from telemed.accounts.models import User
from telemed.consults import service as consults
from telemed.consults.lifecycle import WAITING_STATES
from telemed.consults.models import Consult, ConsultEvent, ConsultState
from telemed.directory.models import SpecialistProfile, VerificationStatus
from telemed.notes import repository as notes
from telemed.notifications.models import DeliveryStatus, OutboxMessage
from telemed.notifications.service import (
    already_queued,
    coordinators_told,
    notify,
    notify_coordinators,
)
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.settings import Settings
from telemed.uow import Units

log = logging.getLogger(__name__)

FINISHED = (ConsultState.completed, ConsultState.answered_async)
DIGEST_HOUR = 6  # local hour (settings.clinician_timezone) after which the digest goes out
REVERIFY_NOTICE = timedelta(days=30)


def _today(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.clinician_timezone)).date()


def follow_ups_due(units: Units, settings: Settings, now: datetime) -> list[int]:
    """Returns the consult ids moved to ``follow_up_due``."""
    with units.one() as session:
        due = [
            (note.id or 0, note.consult_id)
            for note, _case in notes.follow_ups(session, None, _today(settings, now))
        ]
    return [
        consult_id
        for note_id, consult_id in due
        if units.attempt(
            f"marking the follow-up of consult {consult_id} failed",
            log,
            _follow_up_due,
            note_id,
            consult_id,
            now,
        )
    ]


def _follow_up_due(session: Session, note_id: int, consult_id: int, now: datetime) -> bool:
    consult = session.get(Consult, consult_id)
    note = notes.get_note(session, note_id)
    if consult is None or note is None or consult.state not in FINISHED:
        return False
    consults.transition(
        session,
        consult,
        ConsultState.follow_up_due,
        actor=None,
        reason=f"follow-up due on {note.follow_up_on:%d %b %Y}",
        at=now,
    )
    clinician = session.get(User, consult.created_by_id)
    if clinician is not None:
        notify(
            session,
            clinician,
            kind="follow_up_due",
            subject=f"Follow-up due: consult {consult.id}",
            body=(
                f"The specialist asked for a follow-up of consult {consult.id} "
                f"on {note.follow_up_on:%d %b %Y}. Record the outcome on the consult."
            ),
            dedupe_key=f"follow_up_due:consult{consult.id}:note{note.id}",
            link=f"/consults/{consult.id}",
            now=now,
        )
    return True


def _count(session: Session, statement: object) -> int:
    return int(session.exec(statement).one())  # type: ignore[call-overload]


def digest_text(session: Session, settings: Settings, now: datetime) -> str:
    """The numbers a coordinator checks first each morning, for the last 24 hours."""
    since = now - timedelta(hours=24)
    waiting = session.exec(
        select(Consult.urgency, func.count())
        .where(col(Consult.state).in_(list(WAITING_STATES)))
        .group_by(col(Consult.urgency))
    ).all()
    by_urgency = ", ".join(f"{n} {u}" for u, n in sorted(waiting)) or "none"

    def events_to(state: ConsultState) -> int:
        return _count(
            session,
            select(func.count()).where(
                ConsultEvent.to_state == state,
                ConsultEvent.from_state != state,
                col(ConsultEvent.at) >= since,
            ),
        )

    escalated_now = _count(
        session, select(func.count()).where(Consult.state == ConsultState.escalated)
    )
    expired = _count(
        session,
        select(func.count()).where(
            ConsultOffer.status == OfferStatus.expired, col(ConsultOffer.responded_at) >= since
        ),
    )
    failed = _count(
        session, select(func.count()).where(OutboxMessage.status == DeliveryStatus.failed)
    )
    pending = _count(
        session,
        select(func.count()).where(SpecialistProfile.status == VerificationStatus.pending),
    )
    return "\n".join(
        [
            f"Telemed digest for the 24 hours to {now:%d %b %Y %H:%M} UTC",
            f"- waiting for a specialist now: {by_urgency}",
            f"- in the escalation queue now: {escalated_now}",
            f"- requested in the last 24 h: {events_to(ConsultState.requested)}",
            f"- accepted in the last 24 h: {events_to(ConsultState.accepted)}",
            f"- offers expired unanswered: {expired}",
            f"- no-shows: {events_to(ConsultState.no_show)}",
            f"- messages that could not be delivered: {failed}",
            f"- specialists awaiting verification: {pending}",
        ]
    )


def daily_digest(units: Units, settings: Settings, now: datetime) -> int:
    """Once a day after 06:00 Maseru time, one unit of work; returns how many coordinators
    were written to."""
    local = now.astimezone(ZoneInfo(settings.clinician_timezone))
    key = f"digest:{local.date().isoformat()}"
    if local.hour < DIGEST_HOUR:
        return 0
    with units.one() as session:
        if coordinators_told(session, key):
            return 0  # (the digest's counts are not worked out again on every run of the day)
        return notify_coordinators(
            session,
            kind="digest",
            subject=f"Telemed daily digest, {local:%d %b %Y}",
            body=digest_text(session, settings, now),
            dedupe_key=key,
            link="/",
            now=now,
        )


def reverification_reminders(units: Units, settings: Settings, now: datetime) -> int:
    """Verified specialists whose registration expires within 30 days are asked to renew
    it (and the coordinators told), once per expiry date; after it expires they get no
    offers until a coordinator verifies the renewed registration."""
    today = _today(settings, now)

    def key_of(profile: SpecialistProfile, user: User) -> str:
        return f"reverify:user{user.id}:{profile.registration_expires_on.isoformat()}"

    with units.one() as session:
        rows = session.exec(
            select(SpecialistProfile, User)
            .join(User, col(User.id) == col(SpecialistProfile.user_id))
            .where(
                SpecialistProfile.status == VerificationStatus.verified,
                col(SpecialistProfile.registration_expires_on) <= today + REVERIFY_NOTICE,
                col(SpecialistProfile.registration_expires_on) >= today,
                col(User.is_active).is_(True),
            )
        ).all()
        done = already_queued(session, [key_of(profile, user) for profile, user in rows])
    queued = 0
    for profile, user in rows:
        key = key_of(profile, user)
        if key in done:
            continue  # told already (the coordinators in the same unit of work)
        if units.attempt(
            f"reminding specialist {user.id} to renew failed",
            log,
            _remind_to_renew,
            profile,
            user,
            key,
            now,
        ):
            queued += 1
    return queued


def _remind_to_renew(
    session: Session, profile: SpecialistProfile, user: User, key: str, now: datetime
) -> bool:
    expires = f"{profile.registration_expires_on:%d %b %Y}"
    told = notify(
        session,
        user,
        kind="reverification",
        subject=f"Your registration expires on {expires}",
        body=(
            f"Your {profile.registration_body} registration expires on {expires}. "
            "Update it on your profile so a coordinator can verify it again; "
            "after it expires you receive no consult offers."
        ),
        dedupe_key=key,
        link="/specialists/profile",
        now=now,
    )
    notify_coordinators(
        session,
        kind="reverification",
        subject=f"{user.full_name}'s registration expires on {expires}",
        body=f"{user.full_name} ({profile.registration_body}) must be verified again.",
        dedupe_key=key,
        link="/coordinator/specialists",
        now=now,
    )
    return told
