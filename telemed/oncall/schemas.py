"""What the on-call API takes and gives."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from telemed.validation import ClockTime


class BlockIn(BaseModel):
    """A weekly block in the specialist's own zone."""

    model_config = ConfigDict(extra="forbid")
    specialty: str = Field(min_length=1, max_length=40)
    weekday: int = Field(ge=0, le=6, description="0 = Monday ... 6 = Sunday")
    start: ClockTime
    end: ClockTime = Field(description="00:00 means midnight at the end of the day")


class BlockPublic(BaseModel):
    id: int
    specialty: str
    weekday: int
    start: ClockTime
    end: ClockTime
    time_zone: str


class SpanPublic(BaseModel):
    start: str  # in the viewer's zone, e.g. "Sat 12 Dec 00:00"
    end: str
    who: str = ""


class SpecialtyRota(BaseModel):
    specialty: str
    name: str
    covered: list[SpanPublic]
    gaps: list[SpanPublic]
    uncovered_hours: float


class RotaPublic(BaseModel):
    time_zone: str
    week_start: str
    week_end: str
    specialties: list[SpecialtyRota]
