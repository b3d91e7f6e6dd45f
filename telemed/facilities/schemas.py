"""Shapes of facilities in the API."""

from __future__ import annotations

from pydantic import BaseModel


class FacilityPublic(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    district_code: str
    district_name: str
