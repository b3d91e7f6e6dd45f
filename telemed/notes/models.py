"""Consult notes (SOAP, ICD-10 diagnoses, follow-up), their versions, and outcomes.

A note is a series of versions. Version 1 is written as a draft, edited freely, then
signed; a signed version is locked (also by a database trigger). An amendment is a new
version of the same series that points at the version it amends and says why. Nothing is
deleted. The clinician's outcome of a consult is append-only: the latest row counts.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class NoteStatus(StrEnum):
    draft = "draft"
    signed = "signed"


class Outcome(StrEnum):
    treated_locally = "treated_locally"
    referral_avoided = "referral_avoided"
    referred = "referred"
    transferred = "transferred"
    admitted = "admitted"
    died = "died"
    lost_to_follow_up = "lost_to_follow_up"


# How an outcome reads on the consult page, the timeline and in exports (FHIR).
OUTCOME_LABELS = {
    Outcome.treated_locally: "Treated locally",
    Outcome.referral_avoided: "Referral avoided",
    Outcome.referred: "Referred",
    Outcome.transferred: "Transferred",
    Outcome.admitted: "Admitted",
    Outcome.died: "Died",
    Outcome.lost_to_follow_up: "Lost to follow-up",
}


class ConsultNote(SQLModel, table=True):
    __tablename__ = "consult_notes"
    __table_args__ = (UniqueConstraint("series_id", "version", name="uq_note_series_version"),)
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    series_id: str = Field(max_length=36, index=True)  # shared by all versions of one note
    version: int = 1
    amends_id: int | None = Field(default=None, foreign_key="consult_notes.id")
    amendment_reason: str = Field(default="", sa_type=Text)
    author_id: int = Field(foreign_key="users.id")
    author_role: str = Field(max_length=16, sa_type=String(16))
    status: NoteStatus = Field(default=NoteStatus.draft, sa_type=String(8))
    subjective: str = Field(default="", sa_type=Text)
    objective: str = Field(default="", sa_type=Text)
    assessment: str = Field(default="", sa_type=Text)
    plan: str = Field(default="", sa_type=Text)
    follow_up_on: date | None = None
    follow_up_instruction: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    signed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NoteDiagnosis(SQLModel, table=True):
    __tablename__ = "note_diagnoses"
    id: int | None = Field(default=None, primary_key=True)
    note_id: int = Field(foreign_key="consult_notes.id", index=True)
    position: int = 0  # 0 is the principal diagnosis
    code: str = Field(max_length=8)
    title: str = Field(max_length=255)


class ConsultOutcome(SQLModel, table=True):
    __tablename__ = "consult_outcomes"
    __table_args__ = (Index("ix_consult_outcomes_recorded_at", "recorded_at"),)  # uptake
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id", index=True)
    outcome: Outcome = Field(sa_type=String(24))
    detail: str = Field(default="", sa_type=Text)
    recorded_by_id: int = Field(foreign_key="users.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
