"""Consent records: the patient's (or a guardian's) consent to share the case with a
specialist abroad, and separately to a video call.

A consent is evidence, so its table is append-only (a database trigger refuses UPDATE and
DELETE, migration 0016): giving consent and withdrawing it are both new rows, and the
current consent of a scope is its latest row. Nothing is ever edited away.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, String, Text
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class ConsentScope(StrEnum):
    sharing = "sharing"  # the case may be shared with a specialist abroad
    call = "call"  # the patient may be seen and heard on a call


class ConsentAction(StrEnum):
    given = "given"
    withdrawn = "withdrawn"


class ConsentMethod(StrEnum):
    verbal = "verbal"
    witnessed = "witnessed"  # verbal, before a named witness
    written = "written"  # a signed form, photographed and attached to the consult


class Consenter(StrEnum):
    patient = "patient"
    guardian = "guardian"  # a parent or guardian, named with their relationship


class ConsentRecord(SQLModel, table=True):
    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_consult_scope", "consult_id", "scope", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    consult_id: int = Field(foreign_key="consults.id")
    case_id: int = Field(foreign_key="cases.id")
    scope: ConsentScope = Field(sa_type=String(8))
    action: ConsentAction = Field(sa_type=String(10))
    consenter: Consenter = Field(sa_type=String(10))
    guardian_name: str = Field(default="", max_length=200)
    guardian_relationship: str = Field(default="", max_length=80)
    # How consent was given; None for a withdrawal (it takes effect however it is said).
    method: ConsentMethod | None = Field(default=None, sa_type=String(10))
    witness_name: str = Field(default="", max_length=200)
    photo_attachment_id: int | None = Field(default=None, foreign_key="attachments.id")
    reason: str = Field(default="", sa_type=Text)
    # When the patient said so (may be shortly before it was recorded), and when recorded.
    given_at: datetime = Field(sa_type=UTCDateTime)
    recorded_by_id: int = Field(foreign_key="users.id")
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
