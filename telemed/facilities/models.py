"""Districts and health facilities of Lesotho."""

from __future__ import annotations

from sqlalchemy import String
from sqlmodel import Field, SQLModel


class DistrictBase(SQLModel):
    code: str = Field(max_length=8, unique=True, index=True)
    name: str = Field(max_length=80)


class District(DistrictBase, table=True):
    __tablename__ = "districts"
    id: int | None = Field(default=None, primary_key=True)


class FacilityBase(SQLModel):
    code: str = Field(max_length=16, unique=True, index=True)
    name: str = Field(max_length=120)
    kind: str = Field(default="hospital", max_length=24, sa_type=String(24))


class Facility(FacilityBase, table=True):
    __tablename__ = "facilities"
    id: int | None = Field(default=None, primary_key=True)
    district_id: int = Field(foreign_key="districts.id", index=True)
