"""Request and response shapes of consent: recorded on its own, or with a consult request.

The shapes check types only (a missing or unknown ``method`` is a 422 naming ``method``);
the rules that tie fields together (a witness for witnessed consent, a photo for a written
one, a name for a guardian) are the service's, so the API and the page say the same.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from telemed.consent.models import ConsentAction, Consenter, ConsentMethod, ConsentScope
from telemed.consults.schemas import ConsultCreate
from telemed.validation import Id, Name


class ConsenterFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    consenter: Consenter = Field(
        default=Consenter.patient, description="The patient, or a guardian on their behalf"
    )
    guardian_name: Name = Field(default="", max_length=200)
    guardian_relationship: str = Field(
        default="", max_length=80, description="e.g. mother, grandmother, legal guardian"
    )


class ConsentIn(ConsenterFields):
    scope: ConsentScope = Field(description="sharing (with a specialist abroad) or call")
    method: ConsentMethod = Field(description="verbal, witnessed or written")
    witness_name: Name = Field(default="", max_length=200, description="For witnessed consent")
    photo_attachment_id: Id | None = Field(
        default=None,
        description="For written consent: the consult's attachment with the signed form's photo",
    )
    given_at: AwareDatetime | None = Field(
        default=None, description="When it was given (default: now); never in the future"
    )


class WithdrawIn(ConsenterFields):
    scope: ConsentScope
    reason: str = Field(default="", max_length=2000)
    given_at: AwareDatetime | None = Field(
        default=None, description="When it was withdrawn (default: now)"
    )


class ConsentAtRequest(ConsenterFields):
    """Consent taken while requesting the consult, recorded in the same unit of work.

    A written consent needs the photo of the form, which can only be attached once the
    consult exists: it is recorded from the consult page."""

    sharing: bool = Field(default=True, description="Consent to share with a specialist abroad")
    call: bool = Field(default=False, description="Consent to a video or audio call")
    method: ConsentMethod = Field(description="verbal or witnessed")
    witness_name: Name = Field(default="", max_length=200)


class ConsultRequest(ConsultCreate):
    """``POST /api/v1/consults``: the consult, and the patient's consent if taken now.
    Without a sharing consent the consult waits ("waiting for consent") and no offer is
    made until one is recorded."""

    consent: ConsentAtRequest | None = None

    def consult(self) -> ConsultCreate:
        return ConsultCreate.model_validate(self.model_dump(exclude={"consent"}))


class ConsentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    scope: ConsentScope
    action: ConsentAction
    consenter: Consenter
    guardian_name: str
    guardian_relationship: str
    method: ConsentMethod | None
    witness_name: str
    photo_attachment_id: Id | None
    reason: str
    given_at: datetime
    recorded_by_id: Id
    recorded_at: datetime


class ConsentStatePublic(BaseModel):
    """The latest record of each scope (None: never recorded) and whether it is in force."""

    sharing: ConsentPublic | None
    call: ConsentPublic | None
    sharing_given: bool
    call_given: bool


class ConsentList(BaseModel):
    current: ConsentStatePublic
    records: list[ConsentPublic] = Field(description="Every record, oldest first")
