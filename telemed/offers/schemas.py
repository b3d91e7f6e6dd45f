"""Shapes of offers and manual assignment in the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from telemed.consults.models import ConsultMode, ConsultState, Language, Urgency
from telemed.offers.models import OfferStatus
from telemed.validation import Id


class OfferPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    specialist_id: Id
    round: int
    status: OfferStatus
    offered_at: datetime
    expires_at: datetime
    responded_at: datetime | None
    reason: str
    slot_start: datetime | None
    slot_end: datetime | None
    assigned_by_id: Id | None


class OfferWithConsult(OfferPublic):
    specialty: str
    urgency: Urgency
    mode: ConsultMode
    language: Language
    consult_state: ConsultState
    question: str


class DeclineIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class AssignIn(BaseModel):
    specialist_id: Id
    reason: str = Field(default="", max_length=2000)
    # A live consult's session time agreed by phone (with its UTC offset); without it the
    # specialist's next free slot is booked.
    starts_at: AwareDatetime | None = None


class EscalatedPublic(BaseModel):
    consult_id: Id
    specialty: str
    urgency: Urgency
    mode: ConsultMode
    language: Language
    requested_at: datetime | None
    escalated_at: datetime
    reason: str
