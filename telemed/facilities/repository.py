"""All SQL of districts and facilities."""

from __future__ import annotations

from sqlmodel import Session, col, select

from telemed.db import pk
from telemed.facilities.models import District, Facility


def list_facilities(session: Session) -> list[tuple[Facility, District]]:
    rows = session.exec(
        select(Facility, District)
        .join(District, col(District.id) == col(Facility.district_id))
        .order_by(col(District.name), col(Facility.name))
    )
    return [(f, d) for f, d in rows]


def facility_names(session: Session) -> dict[int, str]:
    return {pk(f): f.name for f in session.exec(select(Facility))}


def list_districts(session: Session) -> list[District]:
    return list(session.exec(select(District).order_by(col(District.name))))


def facility_by_code(session: Session, code: str) -> Facility | None:
    return session.exec(select(Facility).where(Facility.code == code)).first()
