"""Shapes of notes, diagnoses and outcomes in the API."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from telemed.notes.models import NoteStatus, Outcome
from telemed.validation import Day, Id

MAX_DIAGNOSES = 10


class NoteFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subjective: str = Field(default="", max_length=20000)
    objective: str = Field(default="", max_length=20000)
    assessment: str = Field(default="", max_length=20000)
    plan: str = Field(default="", max_length=20000)
    diagnoses: list[str] = Field(
        default_factory=list,
        max_length=MAX_DIAGNOSES,
        description="ICD-10 codes, principal diagnosis first, e.g. ['M30.3']",
    )
    follow_up_on: Day | None = Field(default=None, description="When the clinician should review")
    follow_up_instruction: str = Field(default="", max_length=4000)


class NoteCreate(NoteFields):
    pass


class NoteAmend(NoteFields):
    reason: str = Field(min_length=3, max_length=2000, description="Why the signed note is amended")


class DiagnosisPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    title: str


class NotePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    series_id: str
    version: int
    amends_id: Id | None
    amendment_reason: str
    author_id: Id
    author_role: str
    status: NoteStatus
    subjective: str
    objective: str
    assessment: str
    plan: str
    diagnoses: list[DiagnosisPublic]
    follow_up_on: date | None
    follow_up_instruction: str
    created_at: datetime
    updated_at: datetime
    signed_at: datetime | None


class OutcomeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Outcome
    detail: str = Field(default="", max_length=4000)


class OutcomePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    consult_id: Id
    outcome: Outcome
    detail: str
    recorded_by_id: Id
    recorded_at: datetime


class Icd10Public(BaseModel):
    code: str
    title: str


class FollowUpPublic(BaseModel):
    consult_id: Id
    patient_ref: str
    follow_up_on: date
    instruction: str
    overdue: bool
