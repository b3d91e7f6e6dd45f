"""What specialists, clinicians and coordinators are told about offers.

Messages name the consult by number, specialty and urgency and never carry patient text:
they leave the system by e-mail and SMS. An emergency offer also goes by SMS, because an
emergency cannot wait for someone to notice an e-mail.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults.models import Consult, Urgency
from telemed.notifications.service import notify, notify_coordinators
from telemed.offers.models import ConsultOffer
from telemed.timefmt import local_time


def _label(consult: Consult) -> str:
    return f"{consult.urgency} {str(consult.specialty).replace('_', ' ')} consult {consult.id}"


def offered(
    session: Session, consult: Consult, offer: ConsultOffer, specialist: User, now: datetime
) -> None:
    until = local_time(offer.expires_at, ZoneInfo(specialist.timezone), "%a %d %b %H:%M")
    slot = ""
    if offer.slot_start is not None:
        slot = " for " + local_time(
            offer.slot_start, ZoneInfo(specialist.timezone), "%a %d %b %H:%M"
        )
    emergency = consult.urgency == Urgency.emergency
    notify(
        session,
        specialist,
        kind="offer",
        subject=f"{'EMERGENCY: ' if emergency else ''}New {_label(consult)}{slot}",
        body=(
            f"You are offered a {_label(consult)}{slot}.\n"
            f"Accept or decline by {until}; after that it goes to another specialist."
        ),
        dedupe_key=f"offer:{offer.id}",
        link="/offers",
        sms=f"Telemed EMERGENCY consult {consult.id}: answer by {until}." if emergency else None,
        now=now,
    )


def accepted(session: Session, consult: Consult, specialist: User, now: datetime) -> None:
    """The requesting clinician hears who took the consult (a live one's booking notice
    with its invitation comes from the appointments)."""
    clinician = session.get(User, consult.created_by_id)
    if clinician is None:
        return
    notify(
        session,
        clinician,
        kind="accepted",
        subject=f"Consult {consult.id} accepted by {specialist.full_name}",
        body=f"{specialist.full_name} accepted your {_label(consult)}.",
        dedupe_key=f"accepted:consult{consult.id}:specialist{specialist.id}:{now.isoformat()}",
        link=f"/consults/{consult.id}",
        now=now,
    )


def escalated(session: Session, consult: Consult, reason: str, now: datetime) -> None:
    notify_coordinators(
        session,
        kind="escalated",
        subject=f"Escalated: {_label(consult)}",
        body=f"The {_label(consult)} needs a specialist assigned by hand: {reason}.",
        dedupe_key=f"escalated:consult{consult.id}:{now.isoformat()}",
        link="/coordinator/escalations",
        sms=(
            f"Telemed: emergency consult {consult.id} escalated, assign a specialist."
            if consult.urgency == Urgency.emergency
            else None
        ),
        now=now,
    )
