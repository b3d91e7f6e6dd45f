"""Facilities JSON API."""

from __future__ import annotations

from fastapi import APIRouter

from telemed.db import pk
from telemed.deps import CurrentUser, SessionDep
from telemed.facilities import repository
from telemed.facilities.schemas import FacilityPublic
from telemed.web.access import ANY_USER

router = APIRouter(tags=["facilities"])


@router.get("/facilities")
def list_facilities(_user: CurrentUser, db: SessionDep) -> list[FacilityPublic]:
    """Lesotho's facilities on the network, by district."""
    return [
        FacilityPublic(
            id=pk(f),
            code=f.code,
            name=f.name,
            kind=f.kind,
            district_code=d.code,
            district_name=d.name,
        )
        for f, d in repository.list_facilities(db)
    ]


#: Who may use each route (``telemed.web.access``): declared, enforced elsewhere.
ACCESS = {"list_facilities": ANY_USER}
