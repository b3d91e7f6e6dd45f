"""Request and response shapes of the consults API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from telemed.cases.schemas import CaseIn, CasePublic
from telemed.consults.models import (
    ConsultMode,
    ConsultState,
    Language,
    ParticipantRelation,
    Urgency,
)
from telemed.i18n import gettext
from telemed.validation import Id


class Vitals(BaseModel):
    """Structured vitals; every one optional, each within physiologically possible bounds."""

    model_config = ConfigDict(extra="forbid")
    bp_systolic: int | None = Field(default=None, ge=40, le=300, description="mmHg")
    bp_diastolic: int | None = Field(default=None, ge=20, le=200, description="mmHg")
    pulse_bpm: int | None = Field(default=None, ge=20, le=300)
    respiratory_rate: int | None = Field(default=None, ge=2, le=120, description="breaths/min")
    temperature_c: float | None = Field(default=None, ge=25, le=45)
    spo2_percent: int | None = Field(default=None, ge=30, le=100)
    weight_kg: float | None = Field(default=None, gt=0, le=400)

    @model_validator(mode="after")
    def _blood_pressure(self) -> Vitals:
        if (self.bp_systolic is None) != (self.bp_diastolic is None):
            raise ValueError(gettext("blood pressure needs both systolic and diastolic values"))
        if (
            self.bp_systolic is not None
            and self.bp_diastolic is not None
            and self.bp_systolic <= self.bp_diastolic
        ):
            raise ValueError(gettext("systolic blood pressure must be above diastolic"))
        return self


class ConsultFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    specialty: str = Field(
        min_length=1, max_length=40, description="A code from /api/v1/specialties"
    )
    urgency: Urgency
    mode: ConsultMode = Field(description="Preferred mode: video, audio or asynchronous")
    language: Language = Field(description="Preferred language: st (Sesotho) or en (English)")
    question: str = Field(min_length=5, max_length=4000, description="The clinical question")
    history: str = Field(default="", max_length=20000)
    examination: str = Field(default="", max_length=20000)
    current_treatment: str = Field(default="", max_length=10000)
    vitals: Vitals = Field(default_factory=Vitals)


class ConsultCreate(ConsultFields):
    case_id: Id | None = Field(default=None, description="An existing case of your facility")
    case: CaseIn | None = Field(default=None, description="Or a new (or known) patient")
    submit: bool = Field(
        default=True, description="Request the consult at once (true) or keep it as a draft"
    )

    @model_validator(mode="after")
    def _one_case(self) -> ConsultCreate:
        if (self.case_id is None) == (self.case is None):
            raise ValueError("give exactly one of case_id or case")
        return self


class ConsultUpdate(BaseModel):
    """Changes to a draft; absent fields stay as they are."""

    model_config = ConfigDict(extra="forbid")
    specialty: str | None = Field(default=None, min_length=1, max_length=40)
    urgency: Urgency | None = None
    mode: ConsultMode | None = None
    language: Language | None = None
    question: str | None = Field(default=None, min_length=5, max_length=4000)
    history: str | None = Field(default=None, max_length=20000)
    examination: str | None = Field(default=None, max_length=20000)
    current_treatment: str | None = Field(default=None, max_length=10000)
    vitals: Vitals | None = None


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(default="", max_length=2000)


class ConsultSummary(BaseModel):
    """One row of a consult list."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    case_id: Id
    facility_id: Id
    specialty: str
    urgency: Urgency
    mode: ConsultMode
    state: ConsultState
    created_at: datetime
    requested_at: datetime | None
    state_changed_at: datetime
    question: str


class EventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    actor_id: Id | None
    from_state: ConsultState | None
    to_state: ConsultState
    reason: str


class ParticipantPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    user_id: Id
    relation: ParticipantRelation
    created_at: datetime


class ConsultPublic(ConsultSummary):
    language: Language
    history: str
    examination: str
    current_treatment: str
    vitals: Vitals
    created_by_id: Id
    case: CasePublic
    events: list[EventPublic]
    participants: list[ParticipantPublic]


class ConsultPage(BaseModel):
    items: list[ConsultSummary]
    page: int
    page_size: int
    has_next: bool


class SpecialtyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
