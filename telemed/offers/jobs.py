"""The coordinators' daily digest: once a day after 06:00 Maseru time, the numbers they
check first each morning.

Beside the offers because most of it is the state of matching (consults waiting,
escalated, offers expired unanswered), and the offers are the domain that may read every
domain it counts (consults, deliveries, registrations) through their repositories.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.consults import repository as consults_repository
from telemed.consults.lifecycle import WAITING_STATES
from telemed.consults.models import ConsultState
from telemed.directory import repository as directory_repository
from telemed.i18n import gettext
from telemed.notifications import repository as notifications_repository
from telemed.notifications.service import coordinators_told, notify_coordinators
from telemed.offers import repository
from telemed.settings import Settings
from telemed.timefmt import format_day
from telemed.uow import Units

DIGEST_HOUR = 6  # local hour (settings.clinician_timezone) after which the digest goes out


def digest_text(session: Session, now: datetime) -> str:
    """The numbers a coordinator checks first each morning, for the last 24 hours."""
    since = now - timedelta(hours=24)
    waiting = consults_repository.count_by_urgency(session, WAITING_STATES)
    by_urgency = ", ".join(f"{n} {u}" for u, n in sorted(waiting)) or "none"

    def moves_to(state: ConsultState) -> int:
        return consults_repository.count_moves_to(session, state, since)

    escalated = consults_repository.count_in_state(session, ConsultState.escalated)
    return "\n".join(
        [
            f"Telemed digest for the 24 hours to {now:%d %b %Y %H:%M} UTC",
            f"- waiting for a specialist now: {by_urgency}",
            f"- in the escalation queue now: {escalated}",
            f"- requested in the last 24 h: {moves_to(ConsultState.requested)}",
            f"- accepted in the last 24 h: {moves_to(ConsultState.accepted)}",
            f"- offers expired unanswered: {repository.count_expired_since(session, since)}",
            f"- no-shows: {moves_to(ConsultState.no_show)}",
            "- messages that could not be delivered: "
            f"{notifications_repository.count_failed(session)}",
            f"- specialists awaiting verification: {directory_repository.count_pending(session)}",
        ]
    )


def daily_digest(units: Units, settings: Settings, now: datetime) -> int:
    """Once a day after 06:00 Maseru time; returns how many coordinators were written to
    (one unit of work)."""
    with units.one() as session:
        return _digest(session, settings, now)


def _digest(session: Session, settings: Settings, now: datetime) -> int:
    local = now.astimezone(ZoneInfo(settings.clinician_timezone))
    key = f"digest:{local.date().isoformat()}"
    if local.hour < DIGEST_HOUR or coordinators_told(session, key):
        return 0  # (the digest's counts are not worked out again on every run of the day)
    queued = notify_coordinators(
        session,
        kind="digest",
        subject=lambda: (
            gettext("Telemed daily digest, %(day)s") % {"day": format_day(local.date())}
        ),
        body=digest_text(session, now),
        dedupe_key=key,
        link="/",
        now=now,
    )
    return queued
