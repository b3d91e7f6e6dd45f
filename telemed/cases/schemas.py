"""Shapes of a case in the API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from telemed.cases.models import Sex
from telemed.i18n import gettext
from telemed.validation import Id

MIN_BIRTH_YEAR = 1900


class CaseIn(BaseModel):
    """A patient, pseudonymously: no names, no national ID numbers."""

    model_config = ConfigDict(extra="forbid")
    patient_ref: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9/_.\-]*$",
        description="The facility's pseudonymous patient reference, e.g. a register number.",
    )
    age_years: int | None = Field(default=None, ge=0, le=130)
    birth_year: int | None = Field(default=None, ge=MIN_BIRTH_YEAR, le=2100)
    sex: Sex

    @model_validator(mode="after")
    def _age_or_birth_year(self) -> CaseIn:
        if self.age_years is None and self.birth_year is None:
            raise ValueError(gettext("give the patient's age in years or birth year"))
        return self


class CasePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    patient_ref: str
    age_years: int | None
    birth_year: int | None
    sex: Sex
    facility_id: Id
    created_at: datetime
