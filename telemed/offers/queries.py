"""Read models shared by the offers API and pages."""

from __future__ import annotations

from sqlmodel import Session

from telemed.accounts.models import User
from telemed.consults import repository as consults_repository
from telemed.consults.models import Consult
from telemed.db import pk
from telemed.offers import auth, repository
from telemed.offers.models import ConsultOffer, OfferStatus
from telemed.offers.schemas import EscalatedPublic, OfferPublic, OfferWithConsult

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
