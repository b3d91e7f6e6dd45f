"""A case: one patient, known only by a pseudonymous reference, at one facility."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from telemed.db import UTCDateTime, utcnow


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("facility_id", "patient_ref", name="uq_cases_facility_patient_ref"),
        CheckConstraint(
            "age_years IS NOT NULL OR birth_year IS NOT NULL", name="ck_cases_age_or_birth_year"
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(max_length=40)
    age_years: int | None = None
    birth_year: int | None = None
    sex: Sex = Field(sa_type=String(8))
    facility_id: int = Field(foreign_key="facilities.id", index=True)
    created_by_id: int = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
