"""What the administration pages take: a facility's fields (users reuse ``UserCreate``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from telemed.validation import Id, Line, Name


class FacilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(
        min_length=2,
        max_length=16,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="Short code, e.g. QTH-01: clinicians are created with it",
    )
    name: Name = Field(min_length=2, max_length=120)
    kind: Line = Field(
        default="hospital",
        min_length=2,
        max_length=24,
        description="e.g. district hospital, health centre",
    )
    district_id: Id
