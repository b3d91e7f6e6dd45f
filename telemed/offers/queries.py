"""Read models shared by the offers API and pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import repository as consults_repository
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.directory import repository as directory
from telemed.offers import auth, related, repository
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.offers.schemas import EscalatedPublic, OfferPublic, OfferWithConsult
from telemed.oncall import service as oncall

# (user id, name, time zone): one specialist a coordinator may pick
Choice = tuple[int, str, str]

SCHEDULE = (OfferStatus.accepted,)


def with_consult(offer: ConsultOffer, consult: Consult) -> OfferWithConsult:
    return OfferWithConsult(
        **OfferPublic.model_validate(offer).model_dump(),
        specialty=consult.specialty,
        urgency=consult.urgency,
        mode=consult.mode,
        language=consult.language,
        consult_state=consult.state,
        question=consult.question,
    )


def my_offers(
    session: Session, user: User, statuses: tuple[OfferStatus, ...]
) -> list[OfferWithConsult]:
    user_id = auth.ensure_specialist(user)
    return [with_consult(o, c) for o, c in repository.offers_for(session, user_id, statuses)]


def escalation_queue(session: Session, user: User) -> list[EscalatedPublic]:
    auth.ensure_coordinator(user)
    out = []
    for consult in repository.escalated(session):
        events = consults_repository.events_of(session, pk(consult))
        last = events[-1].reason if events else ""
        out.append(
            EscalatedPublic(
                consult_id=pk(consult),
                specialty=consult.specialty,
                urgency=consult.urgency,
                mode=consult.mode,
                language=consult.language,
                requested_at=consult.requested_at,
                escalated_at=consult.state_changed_at,
                reason=last,
            )
        )
    return out


@dataclass(frozen=True)
class Suggestions:
    """Whom the escalation page offers for one consult: its own specialty's verified
    specialists, those of related specialties (``offers.related``), and anyone on call now
    (their specialty beside them)."""

    own: list[Choice]
    related: list[tuple[str, list[Choice]]] = field(default_factory=list)
    on_call: list[tuple[str, Choice]] = field(default_factory=list)


def suggestions(session: Session, specialties: set[str], now: datetime) -> dict[str, Suggestions]:
    """The suggestions for each specialty of the queue (computed once per specialty)."""
    today = now.date()

    def choices(code: str) -> list[Choice]:
        return [
            (pk(u), u.full_name, u.timezone)
            for _, u in directory.eligible_profiles(session, today, code)
        ]

    on_call = [
        (code, (pk(u), u.full_name, u.timezone))
        for code, u in oncall.anyone_on_call_now(session, now)
    ]
    out = {}
    for specialty in sorted(specialties):
        nearby = [(code, choices(code)) for code in related.related_to(specialty)]
        out[specialty] = Suggestions(
            own=choices(specialty),
            related=[(code, found) for code, found in nearby if found],
            on_call=on_call,
        )
    return out
